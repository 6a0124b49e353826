package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// TestRedisClusterFailover: the API on a 3-master Redis Cluster with one
// replica each; the master holding some cached orders is killed (SIGKILL)
// while clients read. Its replica takes over; no request fails, reads of
// its slots fall back to PostgreSQL meanwhile, and then hit the cache again.
func TestRedisClusterFailover(t *testing.T) {
	t.Parallel()
	cluster := testredis.StartCluster(t, 3, 1)
	const prefix = "failover"
	var victim *testredis.Node
	failoverUnderLoad(t, cluster.URL(), prefix, func(ids []uuid.UUID) []uuid.UUID {
		key := func(id uuid.UUID) string { return prefix + ":cache:{order:v3:" + id.String() + "}" }
		victim = cluster.MasterOf(t, key(ids[0]))
		var affected []uuid.UUID
		for _, id := range ids {
			if cluster.MasterOf(t, key(id)) == victim {
				affected = append(affected, id)
			}
		}
		require.Less(t, len(affected), len(ids), "some orders are cached on the other masters")
		victim.Kill(t)
		return affected
	})
	require.Equal(t, 1, cluster.PromotedReplicas(t), "the killed master's replica took over")
}

// TestRedisSentinelFailover: the API on a Sentinel-managed master with one
// replica and three sentinels; the master is killed (SIGKILL) while clients
// read, the sentinels promote the replica and the client follows it.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	set := testredis.StartSentinel(t)
	failoverUnderLoad(t, set.URL(), "failover", func(ids []uuid.UUID) []uuid.UUID {
		set.Master.Kill(t)
		return ids
	})
	require.Equal(t, set.Replica.Port, set.CurrentMaster(t), "the sentinels promoted the replica")
}

// failoverUnderLoad runs the API on redisURL with the order cache on, caches
// processed orders, and reads them from several clients while kill (given
// the order ids, returning those whose cache entries it made unreachable)
// runs. Each affected order is PATCHed during the failover. It then
// requires: not one request failed; reads fell back while the entries were
// unreachable and stopped falling back; every order reads back as written,
// from the cache. The failover gap and the counts are logged.
func failoverUnderLoad(t *testing.T, redisURL, prefix string, kill func(ids []uuid.UUID) (affected []uuid.UUID)) {
	t.Helper()
	ts := startServer(t, map[string]string{
		"REDIS_URL":              redisURL,
		"REDIS_KEY_PREFIX":       prefix,
		"CACHE_TTL":              "5m",
		"REDIS_BREAKER_COOLDOWN": "100ms",
	})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	alice := newUser(t, s)
	ids := newOrders(t, s, alice, 24)
	markProcessed(t, ts.DBURL, ids...)
	for _, id := range ids {
		getOrder(t, s, alice, id) // a miss, which fills the cache
	}
	for _, id := range ids {
		getOrder(t, s, alice, id)
	}
	require.InDelta(t, float64(len(ids)), cacheReads(t, ts, "hit"), 0, "every order was cached by its first read")

	var requests, failed, serverErrors atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				r, err := s.Client.GetOrderWithResponse(t.Context(), ids[i%len(ids)], nil, alice.auth())
				requests.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
				case r.StatusCode() >= 500:
					serverErrors.Add(1)
				case r.StatusCode() != 200:
					failed.Add(1)
				}
			}
		})
	}
	// The fallback count, sampled: the failover gap is how long after the
	// kill it last grew.
	type sample struct {
		at        time.Time
		fallbacks float64
	}
	var samples []sample
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for !stop.Load() {
			body, err := testhttp.Fetch(context.Background(), ts.URL+"/metrics")
			if err == nil {
				var n float64
				n, err = cacheReadsIn(body, "fallback")
				samples = append(samples, sample{time.Now(), n})
			}
			if err != nil { // not require: off the test goroutine
				t.Errorf("sample the fallbacks: %v", err)
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()

	time.Sleep(300 * time.Millisecond)
	fallbacksBefore := cacheReads(t, ts, "fallback")
	killedAt := time.Now()
	affected := kill(ids)
	for _, id := range affected {
		setStatus(t, s, alice, id, client.OrderStatusPAID, 200)
	}
	// Wait for the failover: one second without a fallback.
	deadline := time.Now().Add(40 * time.Second)
	last, lastChange := cacheReads(t, ts, "fallback"), time.Now()
	for time.Since(lastChange) < time.Second {
		require.True(t, time.Now().Before(deadline), "reads still fall back 40 s after the kill\nlogs:\n%s", ts.logs.String())
		time.Sleep(50 * time.Millisecond)
		if n := cacheReads(t, ts, "fallback"); n != last {
			last, lastChange = n, time.Now()
		}
	}
	stop.Store(true)
	wg.Wait()
	<-sampled

	var gap time.Duration
	for i := 1; i < len(samples); i++ {
		if samples[i].fallbacks > samples[i-1].fallbacks {
			gap = samples[i].at.Sub(killedAt)
		}
	}
	fallbacks := last - fallbacksBefore
	t.Logf("failover gap (kill to the last read that fell back to PostgreSQL): %s; %d requests, %d failed, %d 5xx; %.0f reads fell back",
		gap.Round(10*time.Millisecond), requests.Load(), failed.Load(), serverErrors.Load(), fallbacks)
	require.Zero(t, serverErrors.Load(), "a 5xx during the failover")
	require.Zero(t, failed.Load(), "a request failed during the failover")
	require.Positive(t, fallbacks, "no read fell back: the kill did not reach the cache")

	// Cache hits resume, and every order reads as written, the PATCHed ones
	// included. (A PATCH kept for repair makes its order's reads bypass the
	// cache until the repair lands: hence a few passes.)
	paid := map[uuid.UUID]bool{}
	for _, id := range affected {
		paid[id] = true
	}
	allHits := false
	for pass := 0; pass < 50 && !allHits; pass++ {
		before := cacheReads(t, ts, "hit")
		for _, id := range ids {
			want := client.OrderStatusPENDING
			if paid[id] {
				want = client.OrderStatusPAID
			}
			require.Equal(t, want, getOrder(t, s, alice, id).Status, "order %s after the failover", id)
		}
		allHits = cacheReads(t, ts, "hit")-before == float64(len(ids))
		time.Sleep(100 * time.Millisecond)
	}
	require.True(t, allHits, "reads are cache hits again after the failover")
}

var cacheReadsLine = regexp.MustCompile(`(?m)^orders_cache_reads_total\{outcome="(\w+)"\} (\S+)$`)

// cacheReads returns the server's cache_reads_total for outcome.
func cacheReads(t *testing.T, ts *testServer, outcome string) float64 {
	t.Helper()
	v, err := cacheReadsIn(scrapeMetrics(t, ts.URL), outcome)
	require.NoError(t, err)
	return v
}

// cacheReadsIn reads cache_reads_total for outcome from a /metrics body.
func cacheReadsIn(body, outcome string) (float64, error) {
	for _, m := range cacheReadsLine.FindAllStringSubmatch(body, -1) {
		if m[1] == outcome {
			return strconv.ParseFloat(m[2], 64)
		}
	}
	return 0, fmt.Errorf("no cache_reads_total{outcome=%q}", outcome)
}
