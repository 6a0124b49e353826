package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// TestEverythingClustered runs two API instances and two workers processes
// on every engine's clustered form at once, as README's "Scaling out" sets
// them up: REDIS_URL on a 3-master Redis Cluster with a replica each,
// DATABASE_URL through PgBouncer in transaction pooling (cache_describe;
// MIGRATION_DATABASE_URL direct), AMQP_QUEUE_TYPE=quorum with AMQP_URL
// listing a 3-node RabbitMQ cluster. Clients create orders (each with an
// Idempotency-Key, sent to the instances in turn), read them back and PATCH
// some. Under that load a Redis master is SIGKILLed (its replica takes
// over), then the RabbitMQ node leading the task queue stops and starts
// again. No request is answered 5xx, every order is processed exactly once,
// a PATCH on one instance is read at once on the other during the Redis
// failover, and the killed master's slots are served from the cache again
// afterwards.
func TestEverythingClustered(t *testing.T) {
	t.Parallel()
	const clients, createRate, readRate = 4, 25.0, 40.0
	bootStart := time.Now()
	redis, rabbit := startClusters(t)
	dbURL := testdb.New(t)
	bouncer := testdb.StartPgBouncer(t, dbURL, 8)
	t.Logf("engines up in %s: Redis Cluster 3 masters + 3 replicas, RabbitMQ 3 nodes, PgBouncer in transaction pooling",
		time.Since(bootStart).Round(100*time.Millisecond))

	topo := rabbit.Namespace()
	budget := "1000000/1m" // rate limiting on, through the Redis Cluster, without limiting the run
	sys := newSystem(t, bouncer.URL("cache_describe"), topo, map[string]string{
		"MIGRATION_DATABASE_URL": dbURL,
		"REDIS_URL":              redis.URL(),
		"AMQP_QUEUE_TYPE":        messaging.QuorumQueues,
		"DATABASE_MAX_CONNS":     "8",
		"CACHE_TTL":              "5m",
		"RATE_LIMIT_ANONYMOUS":   budget,
		"RATE_LIMIT_AUTH":        budget,
		"RATE_LIMIT_USER":        budget,
	})
	apis := []*proc.Proc{sys.api, startProc(t, "server", sys.env)}
	workers := []*proc.Proc{sys.workers, startProc(t, "workers", sys.env)}
	lb := newFailover(t, apis)
	pool := openPool(t, dbURL) // the test's own reads: direct

	// Orders for the stale-read checks, processed before the load.
	staleUser, staleAuth := sys.newUser()
	staleOrders := processedOrders(t, sys, pool, staleAuth, scaleStaleReads)

	load := &clusterLoad{t: t, lb: lb, statuses: map[string]int{}}
	for range clients {
		id, auth := sys.newUser()
		load.users = append(load.users, &chaosUser{id: id, auth: auth})
	}
	start := time.Now()
	ctx, stopLoad := context.WithCancel(t.Context())
	defer stopLoad()
	var loadDone sync.WaitGroup
	loadDone.Go(func() { paced(ctx, -1, createRate, clients, load.create) })
	loadDone.Go(func() { paced(ctx, -1, readRate, clients, load.read) })
	time.Sleep(5 * time.Second)

	// A Redis master dies: the one holding the first stale-read order's entry.
	cacheKey := func(id uuid.UUID) string { return topo.Namespace + ":cache:{order:v3:" + id.String() + "}" }
	victim := redis.MasterOf(t, cacheKey(staleOrders[0]))
	var onVictim []uuid.UUID
	for _, id := range staleOrders {
		if redis.MasterOf(t, cacheKey(id)) == victim {
			onVictim = append(onVictim, id)
		}
	}
	fallbacksBefore := cacheReads(t, apis, "fallback")
	redisKilled := time.Now()
	victim.Kill(t)
	// A change made while its master is dying can lose its cache write; the
	// promoted replica then still holds the entry before it, and the other
	// instance may read that until the writer's retry of the lost write
	// lands on the new master (every 100 ms once it answers). Such reads
	// are counted here; once the failover is over, every read must be the
	// last change.
	staleChecks, staleReads := readBackChanges(t, lb, staleUser, staleAuth, staleOrders)
	redisGap := waitNoFallback(t, apis, redisKilled)
	fallbacks := cacheReads(t, apis, "fallback") - fallbacksBefore
	require.Equal(t, 1, redis.PromotedReplicas(t), "the killed master's replica took over")
	for _, id := range staleOrders {
		for _, c := range lb.clients {
			require.Eventually(t, func() bool {
				r, err := c.GetOrderWithResponse(t.Context(), id, nil, staleAuth)
				return err == nil && r.JSON200 != nil && r.JSON200.Status == client.OrderStatusSHIPPED
			}, 5*time.Second, 50*time.Millisecond, "order %s still reads stale after the failover", id)
		}
	}

	// Its slots are served from the cache again: each of its orders read
	// twice, no read falls back to PostgreSQL and the second ones are hits.
	fallbacksAfter, hitsBefore := cacheReads(t, apis, "fallback"), cacheReads(t, apis, "hit")
	for _, id := range onVictim {
		for range 2 {
			resp, err := sys.client.GetOrderWithResponse(t.Context(), id, nil, staleAuth)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode(), string(resp.Body))
		}
	}
	require.InDelta(t, fallbacksAfter, cacheReads(t, apis, "fallback"), 0, "no read falls back once the replica took over")
	hitsAfter := cacheReads(t, apis, "hit") - hitsBefore
	require.GreaterOrEqual(t, hitsAfter, float64(len(onVictim)), "the killed master's orders are cache hits again")

	// The RabbitMQ node leading the task queue stops, and starts again.
	taskQueue := topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))
	leader := rabbit.Leader(t, taskQueue, nil)
	rabbitStopped := time.Now()
	rabbit.Stop(t, leader)
	newLeader := rabbit.Leader(t, taskQueue, leader)
	require.NotEqual(t, leader, newLeader)
	time.Sleep(5 * time.Second)
	rabbit.Start(t, leader)
	rabbitDown := time.Since(rabbitStopped)
	time.Sleep(3 * time.Second) // orders keep coming after it is back
	stopLoad()
	loadDone.Wait()
	loadSeconds := time.Since(start).Seconds()

	drain, drained := waitDrained(t.Context(), pool, 90*time.Second)
	require.True(t, drained, "every order processed and every event forwarded within 90 s of the load (waited %.1f s)", drain)
	calls := load.createCalls()
	for _, id := range staleOrders {
		calls = append(calls, chaosCall{op: opCreate, status: http.StatusCreated, order: id})
	}
	audit := auditOrders(t, pool, topo, start, calls, workers)
	rabbitGap := processingGap(t, pool, rabbitStopped)

	t.Logf("%d orders created in %.1f s by %d clients over 2 API instances (%.1f/s), all processed %.1f s after the last; answers %s",
		audit.Created-len(staleOrders), loadSeconds, clients, float64(audit.Created-len(staleOrders))/loadSeconds, drain, load.summary())
	t.Logf("Redis master SIGKILLed: failover gap %s (kill to the last read that fell back), %.0f reads fell back to PostgreSQL, "+
		"%d of %d stale-read orders on its slots read twice afterwards: %.0f hits, 0 fallbacks; %d PATCHes made during the failover read back at once on the other instance, %d of them stale (%v), none after the failover",
		redisGap.Round(10*time.Millisecond), fallbacks, len(onVictim), len(staleOrders), hitsAfter, staleChecks, len(staleReads), staleReads)
	t.Logf("RabbitMQ node %s (leader of the task queue) stopped and back after %s, new leader %s: longest pause in processing %s; "+
		"redelivered tasks absorbed %d, dead letters %d, lost %d, applied twice %d",
		leader.Name, rabbitDown.Round(100*time.Millisecond), newLeader.Name, rabbitGap.Round(10*time.Millisecond),
		audit.Redelivered, audit.DeadLetters, audit.Lost, audit.AppliedTwice)

	require.Zero(t, load.serverErrors.Load(), "the API answered 5xx: %s", load.summary())
	require.Zero(t, load.unexpected.Load(), "answers other than 201 and 200: %s", load.summary())
	require.Equal(t, audit.Created, audit.Orders, "every 201 has its order, and no retry created one twice")
	require.Zero(t, audit.Missing+audit.Lost+audit.Unprocessed, "nothing lost")
	require.Zero(t, audit.Without201, "no order created twice by a retry on the other instance")
	require.Zero(t, audit.EventsNotOne)
	require.Zero(t, audit.AppliedTwice, "nothing applied twice")
	require.Zero(t, audit.NotApplied)
	require.Zero(t, audit.LoggedTwice)
	require.Zero(t, audit.DeadLetters)
}

// startClusters starts the Redis Cluster and the RabbitMQ cluster side by
// side: each takes seconds to tens of seconds, mostly waiting.
func startClusters(t *testing.T) (*testredis.Cluster, *testamqp.Cluster) {
	t.Helper()
	var redis *testredis.Cluster
	redisUp := make(chan struct{})
	go func() {
		defer close(redisUp)
		redis = testredis.StartCluster(t, 3, 1) // a failure marks t failed and ends this goroutine
	}()
	rabbit := func() *testamqp.Cluster {
		defer func() { <-redisUp }() // even when the RabbitMQ cluster fails to start
		return testamqp.StartCluster(t, 3)
	}()
	require.NotNil(t, redis, "the Redis Cluster started")
	return redis, rabbit
}

// cacheReads sums orders_cache_reads_total{outcome} over the API instances.
func cacheReads(t *testing.T, apis []*proc.Proc, outcome string) float64 {
	t.Helper()
	var n float64
	for _, p := range apis {
		n += testhttp.Metric(testhttp.Get(t, p.URL(process.HTTPAddr)+"/metrics"), fmt.Sprintf(`orders_cache_reads_total{outcome=%q}`, outcome))
	}
	return n
}

// waitNoFallback waits until no read has fallen back to PostgreSQL for a
// second, within 40 s, and returns the time from since to the last fallback
// seen.
func waitNoFallback(t *testing.T, apis []*proc.Proc, since time.Time) time.Duration {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	last, lastChange := cacheReads(t, apis, "fallback"), time.Now()
	for time.Since(lastChange) < time.Second {
		require.True(t, time.Now().Before(deadline), "reads still fall back to PostgreSQL 40 s after the kill")
		time.Sleep(50 * time.Millisecond)
		if n := cacheReads(t, apis, "fallback"); n != last {
			last, lastChange = n, time.Now()
		}
	}
	return lastChange.Sub(since)
}

// clusterLoad creates orders with an Idempotency-Key, reads orders back and
// PATCHes some, each request sent to the API instances in turn (and to the
// other one when an instance does not answer). It counts every answer.
type clusterLoad struct {
	t     *testing.T
	lb    *failover
	users []*chaosUser

	serverErrors atomic.Int64
	unexpected   atomic.Int64

	mu       sync.Mutex
	created  []chaosOrder
	statuses map[string]int // "op status" -> answers
}

// create sends one create until it is answered 201; a 409 is its key still
// held by a request in flight, and is tried again.
func (l *clusterLoad) create(seq int) {
	user := l.users[seq%len(l.users)]
	key := uuid.NewString()
	for {
		var resp *client.CreateOrderResponse
		status := l.send(opCreate, func(c *client.ClientWithResponses) (int, error) {
			r, err := c.CreateOrderWithResponse(l.t.Context(), &client.CreateOrderParams{IdempotencyKey: &key}, oneItemOrder(), user.auth)
			if err != nil {
				return 0, err
			}
			resp = r
			return r.StatusCode(), nil
		})
		switch status {
		case http.StatusConflict:
			time.Sleep(50 * time.Millisecond)
			continue
		case http.StatusCreated:
			l.mu.Lock()
			l.created = append(l.created, chaosOrder{id: resp.JSON201.Id, user: user})
			l.mu.Unlock()
		}
		return
	}
}

// read GETs an order created so far, or every fourth time PATCHes it to
// PAID (a no-op once it is).
func (l *clusterLoad) read(seq int) {
	l.mu.Lock()
	if len(l.created) == 0 {
		l.mu.Unlock()
		return
	}
	o := l.created[rand.IntN(len(l.created))] //nolint:gosec // picking an order, not a secret
	l.mu.Unlock()
	if seq%4 == 0 {
		l.send(opPatch, func(c *client.ClientWithResponses) (int, error) {
			r, err := c.UpdateOrderStatusWithResponse(l.t.Context(), o.id, nil, client.UpdateOrderStatusJSONRequestBody{Status: client.OrderStatusPAID}, o.user.auth)
			if err != nil {
				return 0, err
			}
			return r.StatusCode(), nil
		})
		return
	}
	l.send(opGet, func(c *client.ClientWithResponses) (int, error) {
		r, err := c.GetOrderWithResponse(l.t.Context(), o.id, nil, o.user.auth)
		if err != nil {
			return 0, err
		}
		return r.StatusCode(), nil
	})
}

// send sends one request through the instances and counts its answer.
func (l *clusterLoad) send(op string, do func(*client.ClientWithResponses) (int, error)) int {
	status, err := l.lb.do(l.t.Context(), do)
	if err != nil {
		l.t.Errorf("%s: no instance answered: %v", op, err)
	}
	switch {
	case status >= http.StatusInternalServerError:
		l.serverErrors.Add(1)
	case status != expectedStatus[op] && status != http.StatusConflict:
		l.unexpected.Add(1)
	}
	l.mu.Lock()
	l.statuses[fmt.Sprintf("%s %d", op, status)]++
	l.mu.Unlock()
	return status
}

// createCalls are the creates answered 201, as the audit reads them.
func (l *clusterLoad) createCalls() []chaosCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	calls := make([]chaosCall, 0, len(l.created))
	for _, o := range l.created {
		calls = append(calls, chaosCall{op: opCreate, status: http.StatusCreated, order: o.id})
	}
	return calls
}

func (l *clusterLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	parts := make([]string, 0, len(l.statuses))
	for k, n := range l.statuses {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
