package cache

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testlog"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// hammer sends GETs from clients goroutines until stop returns true, and
// returns how many calls failed.
func hammer(r *Redis, clients int, stop func() bool) (calls, failed int64) {
	var nCalls, nFailed atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop() {
				err := r.Do(context.Background(), func(ctx context.Context, c rueidis.Client) error {
					return c.Do(ctx, c.B().Get().Key("breaker-test").Build()).Error()
				})
				nCalls.Add(1)
				if err != nil && !rueidis.IsRedisNil(err) {
					nFailed.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	return nCalls.Load(), nFailed.Load()
}

// circuitMetrics reads the breaker's series as a scrape would.
func circuitMetrics(t *testing.T, r *Redis) (open, openings float64) {
	t.Helper()
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(r.Collector()))
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		switch f.GetName() {
		case "orders_redis_circuit_open":
			open = f.GetMetric()[0].GetGauge().GetValue()
		case "orders_redis_circuit_openings_total":
			openings = f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return open, openings
}

// TestBreakerStaysClosedWhenCallsMissTheirDeadline: on a starved machine
// (busy processes on every core, a workers process starting beside the
// API), calls to a healthy Redis miss their deadline several in a row
// because this process is not scheduled in time. A deadline of 1 µs makes
// every call miss it, the same way but every time: the breaker checks, Redis
// answers the PING within the probe's deadline, and it stays closed.
func TestBreakerStaysClosedWhenCallsMissTheirDeadline(t *testing.T) {
	t.Parallel()
	testredis.Prefix(t) // Redis's shared test lock: no outage test runs meanwhile
	logs := testlog.NewSink()
	r, err := Open(Options{
		URL: testredis.URL(), Timeout: time.Microsecond, Failures: 3, Cooldown: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	// Connected first, as a running process is: a dial under a 1 µs deadline
	// would fail, which is not what this test is about.
	c, err := r.connect()
	require.NoError(t, err)
	require.NoError(t, c.Do(t.Context(), c.B().Ping().Build()).Error())
	deadline := time.Now().Add(15 * time.Second)
	calls, failed := hammer(r, 32, func() bool {
		return r.breaker.checksAnswered.Load() >= 2 || !r.Available() || time.Now().After(deadline)
	})
	t.Logf("%d calls, %d failed; checks answered %d, failed %d", calls, failed, r.breaker.checksAnswered.Load(), r.breaker.checksFailed.Load())
	require.Positive(t, failed, "no call missed its deadline; the rule was not exercised")
	require.True(t, r.Available(), "the breaker opened with Redis healthy: %s", logs.String())
	require.GreaterOrEqual(t, r.breaker.checksAnswered.Load(), uint64(2), "the breaker checked Redis and Redis answered")
	require.Empty(t, logs.Find(logOpen))
	open, openings := circuitMetrics(t, r)
	require.Zero(t, open)
	require.Zero(t, openings)
}
