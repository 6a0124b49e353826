// Command bench measures the service against this machine's limits: it
// builds and starts the API and the workers on a fresh database, seeds users,
// drives closed-loop load per workload, runs the ceilings (the same create
// transaction straight through pgx; a bare Echo server returning a cached
// GET's bytes) alternating with our runs, and measures the event pipeline at
// half and full create rate, the first event after quiet spells and the
// database transactions of the idle system. Results: a table on stdout and JSON under
// bench/results/.
//
//	go run ./bench            full mode (several minutes)
//	go run ./bench -quick     quick mode (about 3 minutes)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ceiling := flag.String("serve-ceiling", "", "internal: serve the HTTP ceiling with this body file")
	ceilingRedis := flag.String("ceiling-redis", "", "internal: with -serve-ceiling, fetch the body from this Redis on every request")
	ceilingKey := flag.String("ceiling-key", "", "internal: the Redis key of -ceiling-redis")
	quick := flag.Bool("quick", false, "short runs (about 3 minutes in all)")
	concurrency := flag.Int("c", 32, "concurrent clients per workload")
	adminURL := flag.String("admin-url", envOr("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL URL allowed to CREATE DATABASE")
	out := flag.String("out", "bench/results", "directory for the JSON results")
	profiles := flag.String("profile", "", "directory for CPU and heap profiles of the API, one per workload (first round)")
	var env envFlags
	flag.Var(&env, "env", "KEY=VALUE for the API and the workers (repeatable), e.g. -env OUTBOX_FORWARDERS=8")
	duration := flag.Duration("duration", 0, "length of each run (default: the mode's)")
	rounds := flag.Int("rounds", 0, "rounds of each workload (default: the mode's); the figures are their medians")
	only := flag.String("only", "", "comma-separated workloads to run (default all: the workloads, pipeline, wakeup, idle), e.g. -only create,pipeline")
	flag.Parse()

	if *ceiling != "" {
		if err := serveCeiling(*ceiling, *ceilingRedis, *ceilingKey); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling server:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	plan := fullPlan
	if *quick {
		plan = quickPlan
	}
	if *duration > 0 {
		plan.Duration = *duration
	}
	if *rounds > 0 {
		plan.Rounds = *rounds
	}
	if err := runBench(ctx, plan, options{concurrency: *concurrency, adminURL: *adminURL, outDir: *out, profileDir: *profiles, env: env, only: splitList(*only)}); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// plan sets how long and how often each measurement runs.
type plan struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_per_run"`
	Rounds   int           `json:"rounds"`
	Pipeline time.Duration `json:"pipeline_duration"`
	// WakeupSamples is how many single orders follow a quiet spell; Idle
	// is the window over which the idle system's transactions are counted.
	WakeupSamples int           `json:"wakeup_samples"`
	Idle          time.Duration `json:"idle_window"`
}

var (
	quickPlan = plan{Name: "quick", Duration: 3 * time.Second, Rounds: 1, Pipeline: 8 * time.Second, WakeupSamples: 5, Idle: 10 * time.Second}
	fullPlan  = plan{Name: "full", Duration: 10 * time.Second, Rounds: 3, Pipeline: 30 * time.Second, WakeupSamples: 9, Idle: 30 * time.Second}
)

// options are the command-line choices of a run.
type options struct {
	concurrency int
	adminURL    string
	outDir      string
	profileDir  string
	env         []string
	only        []string
}

// runs reports whether a workload is selected.
func (o options) runs(name string) bool {
	return len(o.only) == 0 || slices.Contains(o.only, name)
}

type envFlags []string

func (e *envFlags) String() string     { return strings.Join(*e, " ") }
func (e *envFlags) Set(v string) error { *e = append(*e, v); return nil }

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
