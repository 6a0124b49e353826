package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// op performs one request; worker is the goroutine index, seq its count.
type op func(ctx context.Context, worker, seq int) error

// Result is one workload's figures.
type Result struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	RPS         float64 `json:"rps"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	P999ms      float64 `json:"p999_ms"`
	// APICPUms is the CPU time (user + system, from /proc) the process
	// serving the workload spent per answered request: the API, or a
	// ceiling's bare Echo process; 0 for the database ceiling, which runs
	// in the bench's own process.
	APICPUms float64 `json:"api_cpu_ms_per_request,omitempty"`
	// LoadCPUms is the bench process's CPU time per answered request: the
	// load generator (and, for the database ceiling, the create itself).
	LoadCPUms float64 `json:"load_cpu_ms_per_request,omitempty"`
}

// closedLoop runs fn from `concurrency` goroutines, each issuing the next
// request as soon as the previous one answered, for d.
func closedLoop(name string, concurrency int, d time.Duration, fn op) Result {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	lat := make([][]time.Duration, concurrency)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ctx.Err() == nil; seq++ {
				t0 := time.Now()
				err := fn(ctx, w, seq)
				if ctx.Err() != nil {
					return // the request cut short by the deadline is not counted
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	return summarise(name, concurrency, time.Since(start), slices.Concat(lat...), int(errs.Load()))
}

func summarise(name string, concurrency int, elapsed time.Duration, lat []time.Duration, errs int) Result {
	slices.Sort(lat)
	r := Result{Name: name, Concurrency: concurrency, Seconds: elapsed.Seconds(), Requests: len(lat), Errors: errs}
	r.RPS = float64(len(lat)) / elapsed.Seconds()
	r.P50ms, r.P99ms, r.P999ms = pct(lat, 0.50), pct(lat, 0.99), pct(lat, 0.999)
	return r
}

func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

var errStatus = errors.New("unexpected status")

// newHTTPClient keeps enough idle connections for the whole worker pool.
func newHTTPClient(concurrency int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = concurrency * 2
	tr.MaxIdleConnsPerHost = concurrency * 2
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// median returns the median of xs (xs is reordered).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}
