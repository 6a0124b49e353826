package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/proc"
)

// Report is everything one run measured; it is written as JSON.
type Report struct {
	StartedAt time.Time                 `json:"started_at"`
	Machine   Machine                   `json:"machine"`
	Plan      plan                      `json:"plan"`
	Runs      map[string][]Result       `json:"runs"`
	Medians   map[string]Result         `json:"medians"`
	Ratios    map[string]float64        `json:"ratios"`
	RSSMiB    map[string]float64        `json:"max_rss_mib"`
	Pipeline  map[string]PipelineResult `json:"pipeline"`
	Wakeup    *WakeupResult             `json:"wakeup_after_quiet,omitempty"`
	Idle      *IdleResult               `json:"idle,omitempty"`
	Targets   []Target                  `json:"targets"`
}

// Machine identifies where the figures come from.
type Machine struct {
	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go"`
	OS        string `json:"os"`
	CPUModel  string `json:"cpu_model"`
	// The load averages (1, 5, 15 min) at the start and at the end of the
	// run: the machine may have been busy with other work.
	LoadStart string `json:"load_average_start"`
	LoadEnd   string `json:"load_average_end"`
}

// Target is one goal of the performance issue, met or not.
type Target struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
}

func runBench(ctx context.Context, p plan, o options) error {
	concurrency, profileDir := o.concurrency, o.profileDir
	rep := &Report{
		StartedAt: time.Now().UTC(), Plan: p,
		Machine: Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPUModel: cpuModel(), LoadStart: loadAverage()},
		Runs:    map[string][]Result{}, RSSMiB: map[string]float64{}, Pipeline: map[string]PipelineResult{},
	}
	fmt.Printf("bench: %s mode, %d clients, %s per run, %d round(s)\n", p.Name, concurrency, p.Duration, p.Rounds)
	sys, err := startSystem(ctx, o.adminURL, o.env)
	if err != nil {
		return err
	}
	defer sys.stop(context.WithoutCancel(ctx))

	a := &api{base: sys.apiURL, client: newHTTPClient(concurrency)}
	if err := a.seed(ctx, 16); err != nil {
		return fmt.Errorf("seed users: %w", err)
	}
	pool, err := database.Open(ctx, sys.dbURL, 16, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer pool.Close()
	for i := range 16 * 20 {
		if err := a.createOrder(ctx, i, 0); err != nil {
			return fmt.Errorf("seed orders: %w", err)
		}
	}
	dbc, err := newDBCeiling(ctx, sys.dbURL, 16, a.users[0].id)
	if err != nil {
		return err
	}
	defer dbc.close()
	u, id := a.orderOf(0, 0, 1)
	body, err := a.do(ctx, http.MethodGet, "/orders/"+id+"/", u.token, "", "", http.StatusOK)
	if err != nil {
		return err
	}
	ceilURL, ceilProc, err := startCeilingServer(ctx, sys.dir, body, "", "")
	if err != nil {
		return err
	}
	defer ceilProc.Kill()
	ceil := &api{base: ceilURL, client: newHTTPClient(concurrency), users: a.users}
	redisCeilURL, redisCeilProc, err := startCeilingServer(ctx, sys.dir, body, envValue(o.env, "REDIS_URL", defaultRedisURL), sys.namespace+":ceiling")
	if err != nil {
		return err
	}
	defer redisCeilProc.Kill()
	redisCeil := &api{base: redisCeilURL, client: newHTTPClient(concurrency), users: a.users}
	uncached := &api{base: sys.uncachedURL, client: newHTTPClient(concurrency), users: a.users}
	limited := &api{base: sys.limitedURL, client: newHTTPClient(concurrency), users: a.users}

	measure := func(name string, fn op, ours bool) {
		if !o.runs(name) {
			return
		}
		// Creates leave the pipeline busy for a while (RabbitMQ and the
		// workers take CPU); start every measurement on a quiet machine.
		if err := settle(ctx, sys, pool, rep.StartedAt); err != nil {
			fmt.Fprintln(os.Stderr, "bench: settle:", err)
		}
		var stop func()
		server := sys.api
		switch name {
		case "get_uncached":
			server = sys.uncached
		case "get_cached_limited":
			server = sys.limited
		case "ceiling_http":
			server = ceilProc
		case "ceiling_redis":
			server = redisCeilProc
		case "ceiling_db":
			server = nil // it runs in this process
		}
		serverCPU := func() float64 {
			if server == nil {
				return 0
			}
			return procCPU(strconv.Itoa(server.Pid()))
		}
		cpuBefore, loadBefore := serverCPU(), procCPU("self")
		if ours {
			stop = sampleRSS(sys, server, rep.RSSMiB, name)
			if profileDir != "" && len(rep.Runs[name]) == 0 {
				stopProfile := profileAPI(ctx, server, profileDir, name, p.Duration)
				prev := stop
				stop = func() { prev(); stopProfile() }
			}
		}
		r := closedLoop(name, concurrency, p.Duration, fn)
		if stop != nil {
			stop()
		}
		if r.Requests > 0 {
			r.APICPUms = (serverCPU() - cpuBefore) * 1000 / float64(r.Requests)
			r.LoadCPUms = (procCPU("self") - loadBefore) * 1000 / float64(r.Requests)
		}
		rep.Runs[name] = append(rep.Runs[name], r)
		fmt.Printf("  %-16s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d  server cpu %.3f ms/req  load cpu %.3f ms/req\n", name, r.RPS, r.P50ms, r.P99ms, r.Errors, r.APICPUms, r.LoadCPUms)
	}
	for round := 1; round <= p.Rounds; round++ {
		fmt.Printf("round %d/%d\n", round, p.Rounds)
		// Ours and its ceiling back to back, so machine drift hits both.
		measure("create", a.createOrder, true)
		measure("create_keyed", a.createOrderKeyed, true)
		measure("ceiling_db", dbc.create, false)
		measure("get_cached", a.getOrder, true)
		measure("ceiling_redis", redisCeil.getOrder, false)
		measure("get_cached_limited", limited.getOrder, true)
		measure("get_304", a.getOrderNotModified, true)
		measure("ceiling_http", ceil.getOrder, false)
		measure("get_uncached", uncached.getOrder, true)
		measure("list", a.listOrders, true)
		measure("patch", a.patchOrder, true)
		measure("login", a.loginOp, true)
	}
	rep.Medians = medians(rep.Runs)
	rep.Ratios = map[string]float64{
		"create/ceiling_db":        ratio(rep.Medians["create"].RPS, rep.Medians["ceiling_db"].RPS),
		"get_cached/ceiling_http":  ratio(rep.Medians["get_cached"].RPS, rep.Medians["ceiling_http"].RPS),
		"get_cached/ceiling_redis": ratio(rep.Medians["get_cached"].RPS, rep.Medians["ceiling_redis"].RPS),
		// Latency the other way round: at most 2 is the target.
		"get_cached/ceiling_redis_p99":         ratio(rep.Medians["get_cached"].P99ms, rep.Medians["ceiling_redis"].P99ms),
		"get_cached_limited/ceiling_redis":     ratio(rep.Medians["get_cached_limited"].RPS, rep.Medians["ceiling_redis"].RPS),
		"get_cached_limited/ceiling_redis_p99": ratio(rep.Medians["get_cached_limited"].P99ms, rep.Medians["ceiling_redis"].P99ms),
		"get_cached/get_uncached":              ratio(rep.Medians["get_cached"].RPS, rep.Medians["get_uncached"].RPS),
		"create_keyed/create":                  ratio(rep.Medians["create_keyed"].RPS, rep.Medians["create"].RPS),
		"get_304/get_cached":                   ratio(rep.Medians["get_304"].RPS, rep.Medians["get_cached"].RPS),
	}

	sys.stopExtraAPIs()
	if err := runPipeline(ctx, rep, a, sys, pool, p, o); err != nil {
		return err
	}
	if err := runQuiet(ctx, rep, a, sys, pool, p, o); err != nil {
		return err
	}
	rep.Machine.LoadEnd = loadAverage()
	rep.Targets = targets(rep)
	printReport(rep)
	return writeReport(rep, o.outDir)
}

// runPipeline measures the event pipeline at half and at full create rate
// (the create workload's median), and with creates as fast as the API answers.
func runPipeline(ctx context.Context, rep *Report, a *api, sys *system, pool *pgxpool.Pool, p plan, o options) error {
	concurrency := o.concurrency
	maxRate := rep.Medians["create"].RPS
	if !o.runs("pipeline") || maxRate == 0 {
		return nil
	}
	for _, run := range []struct {
		name string
		rate float64
	}{{"quarter", maxRate / 4}, {"half", maxRate / 2}, {"full", maxRate}, {"closed", 0}} {
		if err := settle(ctx, sys, pool, rep.StartedAt); err != nil {
			return err
		}
		if run.rate > 0 {
			fmt.Printf("pipeline at %s create rate (%.0f/s) for %s\n", run.name, run.rate, p.Pipeline)
		} else {
			fmt.Printf("pipeline with creates as fast as the API answers (%d clients) for %s\n", concurrency, p.Pipeline)
		}
		stop := sampleRSS(sys, sys.api, rep.RSSMiB, "pipeline_"+run.name)
		if o.profileDir != "" {
			stopProfile := profileWorkers(ctx, sys, o.profileDir, "pipeline_"+run.name, p.Pipeline)
			prev := stop
			stop = func() { prev(); stopProfile() }
		}
		res, err := pipelineRun(ctx, a, sys, pool, run.rate, p.Pipeline, concurrency)
		stop()
		if err != nil {
			return fmt.Errorf("pipeline %s: %w", run.name, err)
		}
		rep.Pipeline[run.name] = res
	}
	return nil
}

// runQuiet measures the system at rest: the first event after quiet spells
// ("wakeup") and the database transactions of the idle system ("idle").
func runQuiet(ctx context.Context, rep *Report, a *api, sys *system, pool *pgxpool.Pool, p plan, o options) error {
	if o.runs("wakeup") {
		if err := settle(ctx, sys, pool, rep.StartedAt); err != nil {
			return err
		}
		fmt.Printf("first event after %d quiet spells of %s\n", p.WakeupSamples, wakeupQuiet)
		w, err := wakeupRun(ctx, a, pool, p.WakeupSamples)
		if err != nil {
			return fmt.Errorf("wake-up: %w", err)
		}
		rep.Wakeup = &w
	}
	if o.runs("idle") {
		if err := settle(ctx, sys, pool, rep.StartedAt); err != nil {
			return err
		}
		fmt.Printf("idle system: database transactions over %s\n", p.Idle)
		idle, err := idleRun(ctx, sys, p.Idle)
		if err != nil {
			return fmt.Errorf("idle: %w", err)
		}
		rep.Idle = &idle
	}
	return nil
}

// sampleRSS records the largest RSS of the API serving the workload and of
// the workers until stopped, over the whole run ("api", "workers") and for
// this workload ("api:<workload>"), so a figure above the target names its
// workload.
func sampleRSS(sys *system, server *proc.Proc, into map[string]float64, workload string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			api := rssMiB(server)
			into["api"] = max(into["api"], api)
			into["api:"+workload] = max(into["api:"+workload], api)
			into["workers"] = max(into["workers"], rssMiB(sys.workers))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// settle waits until the outbox is empty and every order is processed, then
// vacuums and analyzes the bench database. This machine's PostgreSQL runs
// with autovacuum off; a production one would have cleaned up the dead row
// versions that the previous measurement left (every processed order and
// every forwarded event is an update) and gathered statistics while the
// system was idle. Without it, each measurement would run slower than the
// one before (docs/decisions.md).
func settle(ctx context.Context, sys *system, pool *pgxpool.Pool, since time.Time) error {
	q := db.New(pool)
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		w, err := readWorkers(ctx, sys)
		if err != nil {
			return err
		}
		pending, err := q.CountUnprocessedSince(ctx, since)
		if err != nil {
			return err
		}
		if w.unforwarded == 0 && pending == 0 {
			if _, err := pool.Exec(ctx, "VACUUM ANALYZE"); err != nil {
				return fmt.Errorf("vacuum: %w", err)
			}
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("pipeline still busy after 3 minutes")
}

func medians(runs map[string][]Result) map[string]Result {
	out := map[string]Result{}
	for name, rs := range runs {
		pick := func(f func(Result) float64) float64 {
			xs := make([]float64, len(rs))
			for i, r := range rs {
				xs[i] = f(r)
			}
			return median(xs)
		}
		m := rs[0]
		m.RPS = pick(func(r Result) float64 { return r.RPS })
		m.P50ms = pick(func(r Result) float64 { return r.P50ms })
		m.P99ms = pick(func(r Result) float64 { return r.P99ms })
		m.P999ms = pick(func(r Result) float64 { return r.P999ms })
		m.APICPUms = pick(func(r Result) float64 { return r.APICPUms })
		m.LoadCPUms = pick(func(r Result) float64 { return r.LoadCPUms })
		m.Errors = 0
		for _, r := range rs {
			m.Errors += r.Errors
		}
		out[name] = m
	}
	return out
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

const defaultRedisURL = "redis://127.0.0.1:6379/0"

// envValue is the last KEY=VALUE for key in env (the last one wins, as for
// the processes the bench starts), or def.
func envValue(env []string, key, def string) string {
	v := def
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}
