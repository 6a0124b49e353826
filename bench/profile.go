package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
)

// profileAPI records a CPU profile of the API serving a workload over most of its run
// and a heap profile at its end, into dir/<workload>.{cpu,heap}.pprof
// (read them with go tool pprof). It returns a function that waits for both.
func profileAPI(ctx context.Context, server *proc.Proc, dir, workload string, d time.Duration) func() {
	return profileProcess(ctx, server.URL(process.DebugAddr), dir, workload, d)
}

// profileWorkers does the same for the workers process, into
// dir/workers_<workload>.{cpu,heap}.pprof.
func profileWorkers(ctx context.Context, sys *system, dir, workload string, d time.Duration) func() {
	return profileProcess(ctx, sys.workers.URL(process.DebugAddr), dir, "workers_"+workload, d)
}

func profileProcess(ctx context.Context, debugURL, dir, workload string, d time.Duration) func() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		seconds := max(int(d.Seconds())-1, 1)
		if err := fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", debugURL, seconds), filepath.Join(dir, workload+".cpu.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "bench: cpu profile:", err)
		}
		if err := fetch(ctx, debugURL+"/debug/pprof/heap", filepath.Join(dir, workload+".heap.pprof")); err != nil {
			fmt.Fprintln(os.Stderr, "bench: heap profile:", err)
		}
	}()
	return wg.Wait
}

func fetch(ctx context.Context, url, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close() //nolint:errcheck // io.Copy reported the error that matters
	_, err = io.Copy(f, resp.Body)
	return err
}
