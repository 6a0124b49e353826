package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlock"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

var (
	chaosFull    = flag.Bool("chaos.full", false, "TestChaosUnderLoad runs the full plan (task chaos) instead of the short one")
	chaosResults = flag.String("chaos.results", "", "directory where TestChaosUnderLoad writes its JSON result (none when empty)")
)

// chaosPlan is one chaos-under-load run: creates paced from many clients,
// readers doing GET, PATCH and list in turn, and faults injected one after
// another while the load runs.
type chaosPlan struct {
	Name          string       `json:"name"`
	Orders        int          `json:"orders"` // create attempts
	CreateRate    float64      `json:"create_rate"`
	CreateClients int          `json:"create_clients"`
	ReadRate      float64      `json:"read_rate"`
	Readers       int          `json:"readers"`
	OutageSeconds float64      `json:"outage_seconds"` // how long a stopped service stays down
	Faults        []chaosFault `json:"faults"`
}

// chaosFault stops a service (or SIGKILLs a workers process) AtSeconds after
// the load starts, or as soon as the previous fault is over.
type chaosFault struct {
	AtSeconds float64 `json:"at_seconds"`
	Service   string  `json:"service"` // rabbitmq, redis, postgres or workers
	Workers   int     `json:"workers,omitempty"`
}

const (
	faultRabbitMQ = "rabbitmq"
	faultRedis    = "redis"
	faultPostgres = "postgres"
	faultWorkers  = "workers"
)

// chaosFaults is the sequence of both plans: RabbitMQ's application stopped
// twice, each of the two workers processes SIGKILLed and restarted, Redis
// shut down, PostgreSQL stopped and started once.
func chaosFaults(at ...float64) []chaosFault {
	kinds := []chaosFault{
		{Service: faultRabbitMQ}, {Service: faultWorkers, Workers: 0}, {Service: faultRedis},
		{Service: faultPostgres}, {Service: faultRabbitMQ}, {Service: faultWorkers, Workers: 1},
	}
	for i := range kinds {
		kinds[i].AtSeconds = at[i]
	}
	return kinds
}

var (
	// The short plan runs in CI (about a minute of load).
	shortChaos = chaosPlan{Name: "short", Orders: 3600, CreateRate: 60, CreateClients: 8, ReadRate: 30, Readers: 4,
		OutageSeconds: 5, Faults: chaosFaults(3, 16, 22, 29, 41, 53)}
	// The full plan is task chaos: the figures of the original report.
	fullChaos = chaosPlan{Name: "full", Orders: 19500, CreateRate: 300, CreateClients: 16, ReadRate: 150, Readers: 8,
		OutageSeconds: 5, Faults: chaosFaults(4, 17, 23, 31, 43, 56)}
)

// recoveryGrace is how long after a service is back a request may still meet
// its outage: a pooled connection that died with the old PostgreSQL server
// fails the request that takes it.
const recoveryGrace = 2 * time.Second

// TestChaosUnderLoad drives the API and two workers processes with creates
// and reads while RabbitMQ, Redis and PostgreSQL go down and each workers
// process is SIGKILLed, then checks against the database that no order was
// lost or applied twice, that every 201 has its order, that the API answered
// 5xx only while PostgreSQL was down and then only 503, that the backlog
// drained and that every service is back. It prints a report (and writes it
// as JSON with -chaos.results); -chaos.full runs the full plan.
func TestChaosUnderLoad(t *testing.T) {
	t.Parallel()
	plan := shortChaos
	if *chaosFull {
		plan = fullChaos
	}
	// The run stops the services every other test uses: it holds all three
	// (all at once, or it would deadlock with tests taking them one by one),
	// and each Outage helper restarts its service when the test ends.
	testlock.Exclusive(t, "postgres", "rabbitmq", "redis")
	// Ctrl-C ends the run early; the cleanups then start whatever is down,
	// before the signals are let go.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	t.Cleanup(stop)
	dbURL := testdb.Outage(t)
	topo := testamqp.Outage(t)
	prefix := testredis.Outage(t)

	budget := "1000000/1m" // rate limiting stays on (through Redis) without limiting the run
	sys := newSystem(t, dbURL, topo, map[string]string{
		"REDIS_KEY_PREFIX":     prefix,
		"RATE_LIMIT_ANONYMOUS": budget,
		"RATE_LIMIT_AUTH":      budget,
		"RATE_LIMIT_USER":      budget,
	})
	run := &chaosRun{t: t, sys: sys, plan: plan,
		workers: []*proc.Proc{sys.workers, startProc(t, "workers", sys.env)}}
	load := newChaosLoad(t, sys, plan.CreateClients)

	result := chaosResult{StartedAt: time.Now().UTC(), Plan: plan,
		Machine: fmt.Sprintf("%d CPUs, %s, %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)}
	run.start = time.Now()
	loadCtx, stopLoad := context.WithCancel(ctx)
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.run(loadCtx, plan) }()
	t.Cleanup(func() { stopLoad(); <-loadDone }) // a failed fault ends the load too

	for _, f := range plan.Faults {
		if !sleepCtx(ctx, time.Until(run.start.Add(seconds(f.AtSeconds)))) {
			break
		}
		run.inject(ctx, f)
	}
	<-loadDone
	require.NoError(t, ctx.Err(), "interrupted")
	result.LoadSeconds = time.Since(run.start).Seconds()
	result.CreateRate = float64(plan.Orders) / result.LoadSeconds

	pool := openPool(t, sys.dbURL)
	result.DrainSeconds, result.Drained = waitDrained(ctx, pool, 3*time.Minute)
	result.Services = run.servicesBack(ctx)
	result.Audit = auditOrders(t, pool, topo, run.start, load.calls, run.allWorkers())
	result.Windows, result.BeforeFaults = run.attribute(load.calls)
	result.Requests = countStatuses(load.calls)
	result.PerSecond = perSecond(run.start, load.calls)
	result.Checks = result.check(load.calls, run.windows)

	t.Log("\n" + result.table())
	if *chaosResults != "" {
		path, err := result.write(*chaosResults)
		require.NoError(t, err)
		t.Logf("wrote %s", path)
	}
	for _, c := range result.Checks {
		require.True(t, c.OK, "%s: %s", c.Name, c.Got)
	}
}

// stoppable are the services a fault stops: how each goes down and comes
// back (each start waits until the service accepts connections).
var stoppable = map[string]struct {
	fault       string
	stop, start func(testing.TB)
}{
	faultRabbitMQ: {"RabbitMQ application stopped", testamqp.Stop, testamqp.Start},
	faultRedis:    {"Redis shut down", testredis.Stop, testredis.Start},
	faultPostgres: {"PostgreSQL stopped and started", testdb.Stop, testdb.Start},
}

// chaosRun is the system under test and the faults injected so far.
type chaosRun struct {
	t       *testing.T
	sys     *system
	plan    chaosPlan
	start   time.Time    // the load's
	workers []*proc.Proc // the running workers processes
	killed  []*proc.Proc // the SIGKILLed ones, for their logs
	windows []chaosWindow
}

// chaosWindow is one fault: when it began, when the service was seen down
// and when it was back (the restarted workers process running).
type chaosWindow struct {
	Fault string    `json:"fault"`
	kind  string    // chaosFault.Service
	start time.Time // the stop command or the SIGKILL
	down  time.Time
	up    time.Time
	until time.Time // the end of its requests: recoveryGrace after up, or the next fault
	// Seconds since the load started.
	Start float64 `json:"start_s"`
	Down  float64 `json:"down_s"`
	Up    float64 `json:"up_s"`
	chaosCounts
}

// inject applies one fault and waits until its service is back. An
// interrupted run still restarts the service before it stops.
func (r *chaosRun) inject(ctx context.Context, f chaosFault) {
	t := r.t
	w := chaosWindow{kind: f.Service, start: time.Now()}
	if n := len(r.windows); n > 0 && r.windows[n-1].until.After(w.start) {
		r.windows[n-1].until = w.start
	}
	if s, ok := stoppable[f.Service]; ok {
		w.Fault = s.fault
		s.stop(t)
		w.down = time.Now()
		sleepCtx(ctx, seconds(r.plan.OutageSeconds))
		s.start(t)
	} else {
		require.Equal(t, faultWorkers, f.Service, "unknown fault")
		w.Fault = fmt.Sprintf("workers %d SIGKILLed and restarted", f.Workers+1)
		killed := r.workers[f.Workers]
		killed.Kill()
		w.down = time.Now()
		r.killed = append(r.killed, killed)
		sleepCtx(ctx, time.Second)
		r.workers[f.Workers] = startProc(t, "workers", r.sys.env)
	}
	w.up = time.Now()
	w.until = w.up.Add(recoveryGrace)
	w.Start, w.Down, w.Up = r.since(w.start), r.since(w.down), r.since(w.up)
	r.windows = append(r.windows, w)
	t.Logf("%6.1fs  %s: down %.1fs after the command, back %.1fs later", w.Start, w.Fault, w.Down-w.Start, w.Up-w.Down)
	require.NoError(t, ctx.Err(), "interrupted")
}

func (r *chaosRun) since(at time.Time) float64 { return at.Sub(r.start).Seconds() }

func (r *chaosRun) allWorkers() []*proc.Proc {
	return append(append([]*proc.Proc(nil), r.killed...), r.workers...)
}

// sleepCtx sleeps for d, or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d > 0 {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}
	return ctx.Err() == nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
