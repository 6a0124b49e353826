package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/testkit/testlog"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// newLimiter returns a Limiter with its own Redis connection on url.
func newLimiter(t *testing.T, url, prefix string) (*Limiter, *testlog.Sink) {
	t.Helper()
	logs := testlog.NewSink()
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	// A deadline far above Redis's answer time, so that a machine loaded by
	// other tests cannot turn a shared budget into per-instance fallbacks;
	// the fallback tests use an address where nothing listens.
	r, err := cache.Open(cache.Options{URL: url, Timeout: time.Second, Failures: 3, Cooldown: time.Second, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return New(r, prefix, logger), logs
}

func TestAllowSpendsTheBurstThenRefuses(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	redisLimiter, _ := newLimiter(t, testredis.URL(), prefix)
	fallback, _ := newLimiter(t, "redis://127.0.0.1:1", prefix) // nothing listens: in-process budgets

	for name, l := range map[string]*Limiter{"redis": redisLimiter, "in-process": fallback} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rate := Rate{Limit: 5, Period: 10 * time.Second}
			for i := range 5 {
				r := l.Allow(t.Context(), "burst", name, rate)
				require.True(t, r.Allowed, "request %d", i+1)
				require.Equal(t, 5, r.Limit)
				require.Equal(t, 4-i, r.Remaining, "request %d", i+1)
				require.Zero(t, r.RetryAfter)
				require.InDelta(t, float64(2*(i+1))*float64(time.Second), float64(r.ResetAfter), float64(time.Second),
					"each request adds one emission interval (2s) to refill")
			}
			r := l.Allow(t.Context(), "burst", name, rate)
			require.False(t, r.Allowed, "the sixth request within the period")
			require.Zero(t, r.Remaining)
			require.InDelta(t, float64(2*time.Second), float64(r.RetryAfter), float64(time.Second), "the next slot is one interval away")
			require.InDelta(t, float64(10*time.Second), float64(r.ResetAfter), float64(time.Second))

			other := l.Allow(t.Context(), "burst", name+"-other", rate)
			require.True(t, other.Allowed, "budgets are per subject")
			otherBucket := l.Allow(t.Context(), "other-bucket", name, rate)
			require.True(t, otherBucket.Allowed, "and per bucket")
		})
	}
}

func TestAllowRefillsEvenly(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	l, _ := newLimiter(t, testredis.URL(), prefix)
	rate := Rate{Limit: 2, Period: 400 * time.Millisecond}
	require.True(t, l.Allow(t.Context(), "refill", "a", rate).Allowed)
	require.True(t, l.Allow(t.Context(), "refill", "a", rate).Allowed)
	denied := l.Allow(t.Context(), "refill", "a", rate)
	require.False(t, denied.Allowed)
	time.Sleep(denied.RetryAfter + 20*time.Millisecond)
	again := l.Allow(t.Context(), "refill", "a", rate)
	require.True(t, again.Allowed, "one slot is back after Retry-After")
	require.Equal(t, 0, again.Remaining)
}

// TestInstancesShareOneBudget: limiters with their own Redis connections (as
// separate API instances have) draw from one budget, even concurrently.
func TestInstancesShareOneBudget(t *testing.T) {
	t.Parallel()
	a, b := twoInstances(t)
	rate := Rate{Limit: 30, Period: time.Minute}

	allowed := allowConcurrently(t, []*Limiter{a, b}, 100, 1, "shared", rate)
	require.EqualValues(t, 30, allowed, "100 concurrent requests over two instances against one budget of 30")
}

func TestFallbackIsEnforcedAndLoggedOnce(t *testing.T) {
	t.Parallel()
	l, logs := newLimiter(t, "redis://127.0.0.1:1", "unused")
	rate := Rate{Limit: 3, Period: time.Minute}
	allowed := 0
	for range 10 {
		if l.Allow(t.Context(), "fallback", "x", rate).Allowed {
			allowed++
		}
	}
	require.Equal(t, 3, allowed, "without Redis the limit still holds: never unlimited")
	require.Len(t, logs.Find("rate limiting falls back to in-process budgets (per instance) while redis is unavailable"), 1)
}

func TestLocalForgetsFullBudgets(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := newLocal(func() time.Time { return now })
	interval := time.Second.Microseconds()
	for i := range pruneEvery - 1 {
		l.allow(fmt.Sprint("client-", i), interval, interval*10, 10)
	}
	require.Len(t, l.tats, pruneEvery-1)
	now = now.Add(2 * time.Second) // every budget is full again
	l.allow("one-more", interval, interval*10, 10)
	require.Len(t, l.tats, 1, "the sweep dropped the keys that carry no state")
}

func TestSubjectHidesTheValue(t *testing.T) {
	t.Parallel()
	a := Subject("Alice@Example.com ")
	require.Equal(t, a, Subject("alice@example.com"), "case and spaces do not make a new budget")
	require.Equal(t, a, Subject("ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"), "neither do full-width letters, which log in to the same account")
	require.Equal(t, a, Subject("Ａlice@example.com"), "nor one full-width letter")
	require.NotContains(t, a, "alice")
	require.Len(t, a, 32)
	require.NotEqual(t, a, Subject("bob@example.com"))
}

func TestHugeBudgetsDoNotBreak(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	redisLimiter, _ := newLimiter(t, testredis.URL(), prefix)
	fallback, _ := newLimiter(t, "redis://127.0.0.1:1", prefix)
	for name, l := range map[string]*Limiter{"redis": redisLimiter, "in-process": fallback} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rate := Rate{Limit: 1_000_000_000, Period: time.Minute} // under 1 µs per request
			for range 100 {
				r := l.Allow(t.Context(), "huge", name, rate)
				require.True(t, r.Allowed)
				require.Equal(t, rate.Limit, r.Limit)
			}
		})
	}
}

// TestHeldRequestsCountExactly: a client's quick succession of requests is
// drawn from Redis several at a time, and every answer still gives the
// budget's exact remaining requests.
func TestHeldRequestsCountExactly(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, testredis.URL(), testredis.Prefix(t))
	rate := Rate{Limit: 1000, Period: time.Hour}
	for i := range 200 {
		r := l.Allow(t.Context(), "quick", "a", rate)
		require.True(t, r.Allowed)
		require.Equal(t, 999-i, r.Remaining, "request %d", i+1)
	}
	require.Less(t, l.draws.Load(), int64(100), "fewer round trips than half the requests")
	t.Logf("%d round trips for 200 requests", l.draws.Load())
}

// TestBurstsDrawSeveralRequestsAtOnce: concurrent requests on two
// instances against one large budget take it from Redis several at a time,
// and still get no more than the budget; what a lease leaves unspent is at
// most 1% of the budget per instance.
func TestBurstsDrawSeveralRequestsAtOnce(t *testing.T) {
	t.Parallel()
	a, b := twoInstances(t)
	rate := Rate{Limit: 1000, Period: time.Hour}
	got := allowConcurrently(t, []*Limiter{a, b}, 64, 25, "burst", rate) // 1,600 requests against a budget of 1,000
	require.LessOrEqual(t, got, int64(1000), "never more than the budget")
	require.GreaterOrEqual(t, got, int64(1000-2*(1000/leaseShare-1)), "unspent leases are at most 1%% of the budget per instance")
	draws := a.draws.Load() + b.draws.Load()
	require.Less(t, draws, int64(400), "1,600 requests in fewer round trips than a quarter of their number")
	t.Logf("%d allowed, %d round trips for 1,600 requests", got, draws)

	// A refusal is remembered: the budget is spent, so the next requests are
	// refused without a round trip, with a Retry-After that counts down.
	before := a.draws.Load()
	first := a.Allow(t.Context(), "burst", "client", rate)
	second := a.Allow(t.Context(), "burst", "client", rate)
	require.False(t, first.Allowed)
	require.False(t, second.Allowed)
	require.Positive(t, second.RetryAfter)
	require.LessOrEqual(t, second.RetryAfter, first.RetryAfter)
	require.LessOrEqual(t, a.draws.Load()-before, int64(1), "at most one round trip for both")
}

// TestLeaseExpires: requests held by an instance are spent within leaseTTL
// or not at all; later requests go to Redis again.
func TestLeaseExpires(t *testing.T) {
	t.Parallel()
	l, _ := newLimiter(t, testredis.URL(), testredis.Prefix(t))
	rate := Rate{Limit: 100000, Period: time.Hour}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 20 {
				require.True(t, l.Allow(t.Context(), "expiry", "a", rate).Allowed)
			}
		})
	}
	wg.Wait()
	h := l.held.lease(l.prefix + "expiry:a")
	h.mu.Lock()
	h.tokens = max(h.tokens, 1) // whatever the burst left over
	h.mu.Unlock()
	time.Sleep(leaseTTL + 10*time.Millisecond)
	before := l.draws.Load()
	require.True(t, l.Allow(t.Context(), "expiry", "a", rate).Allowed)
	require.Equal(t, before+1, l.draws.Load(), "an expired lease is not spent")
}

// twoInstances are two limiters with Redis connections of their own on
// one key prefix, as two API instances have.
func twoInstances(t *testing.T) (a, b *Limiter) {
	t.Helper()
	prefix := testredis.Prefix(t)
	a, _ = newLimiter(t, testredis.URL(), prefix)
	b, _ = newLimiter(t, testredis.URL(), prefix)
	return a, b
}

// allowConcurrently runs clients goroutines, spread over the instances in
// turn, each asking each times for a request from client's budget in
// bucket, and returns how many were allowed.
func allowConcurrently(t *testing.T, instances []*Limiter, clients, each int, bucket string, rate Rate) int64 {
	t.Helper()
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		l := instances[i%len(instances)]
		wg.Go(func() {
			for range each {
				if l.Allow(t.Context(), bucket, "client", rate).Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return allowed.Load()
}

// TestHungRedisCostsOneDeadline: while Redis hangs (connected, answering
// nothing), concurrent requests on one busy budget each wait about one call
// deadline, not one per request queued before them, and are decided in
// process.
func TestHungRedisCostsOneDeadline(t *testing.T) {
	t.Parallel()
	proxy := testredis.NewFreezer(t, testredis.URL())
	logger := slog.New(slog.NewJSONHandler(testlog.NewSink(), nil))
	const deadline = 100 * time.Millisecond
	r, err := cache.Open(cache.Options{URL: proxy.URL(), Timeout: deadline, Failures: 1000, Cooldown: time.Second, Logger: logger})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	l := New(r, testredis.Prefix(t), logger)
	rate := Rate{Limit: 100000, Period: time.Hour}
	require.True(t, l.Allow(t.Context(), "hung", "a", rate).Allowed, "through Redis while it answers")
	require.False(t, l.fallback.Load())

	proxy.Freeze()
	t.Cleanup(proxy.Thaw)
	time.Sleep(2 * leaseTTL) // whatever the first draw left held expires
	var slowest atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			start := time.Now()
			require.True(t, l.Allow(t.Context(), "hung", "a", rate).Allowed, "the in-process budget admits it")
			took := int64(time.Since(start))
			for {
				was := slowest.Load()
				if took <= was || slowest.CompareAndSwap(was, took) {
					return
				}
			}
		})
	}
	wg.Wait()
	require.True(t, l.fallback.Load(), "decided in process")
	require.Less(t, time.Duration(slowest.Load()), 4*deadline, "16 queued requests, call deadline %v", deadline)
}

// TestCallerGoneIsNoOutage: a request whose caller has gone says nothing
// about Redis: no fallback is declared or logged.
func TestCallerGoneIsNoOutage(t *testing.T) {
	t.Parallel()
	l, logs := newLimiter(t, testredis.URL(), testredis.Prefix(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, rate := range []Rate{{Limit: 10, Period: time.Hour}, {Limit: 100000, Period: time.Hour}} {
		l.Allow(ctx, "gone", "a", rate)
	}
	require.False(t, l.fallback.Load())
	require.Empty(t, logs.Find("rate limiting falls back to in-process budgets (per instance) while redis is unavailable"))
	require.True(t, l.Allow(t.Context(), "gone", "a", Rate{Limit: 100000, Period: time.Hour}).Allowed)
	require.False(t, l.fallback.Load(), "the next request goes to Redis")
}
