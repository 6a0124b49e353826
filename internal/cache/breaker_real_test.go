package cache

import (
	"context"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testlock"
	"github.com/ordersvc/orders/internal/testredis"
)

// starveCPU runs n busy-looping processes until t ends: other work taking
// every core, as a workers process starting next to the API does.
func starveCPU(t *testing.T, n int) {
	t.Helper()
	cmds := make([]*exec.Cmd, 0, n)
	t.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done") //nolint:noctx // killed in cleanup
		require.NoError(t, c.Start())
		cmds = append(cmds, c)
	}
}

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

// TestBreakerStaysClosedOnAStarvedMachine: with busy processes on every
// core, calls to a healthy Redis miss their 50 ms deadline several in a
// row (this process is not scheduled in time). The breaker checks, Redis
// answers the PING, and it stays closed.
func TestBreakerStaysClosedOnAStarvedMachine(t *testing.T) {
	t.Parallel()
	// Exclusive: while the cores are taken, every other test's Redis calls
	// miss their deadlines too, as in an outage.
	testlock.Exclusive(t, "redis")
	r, logs := open(t, testredis.URL())
	starveCPU(t, 4)
	deadline := time.Now().Add(15 * time.Second)
	calls, failed := hammer(r, 32, func() bool {
		return r.breaker.checksAnswered.Load() >= 2 || !r.Available() || time.Now().After(deadline)
	})
	t.Logf("%d calls, %d failed; checks answered %d, failed %d", calls, failed, r.breaker.checksAnswered.Load(), r.breaker.checksFailed.Load())
	require.True(t, r.Available(), "the breaker opened with Redis healthy")
	require.Positive(t, r.breaker.checksAnswered.Load(), "starvation never failed %d calls in a row; the rule was not exercised", r.breaker.threshold)
	assert.Empty(t, logs.Find(logOpen))
	open, openings := circuitMetrics(t, r)
	assert.Zero(t, open)
	assert.Zero(t, openings)
}
