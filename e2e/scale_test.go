package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

var scaleOrders = flag.Int("scale.orders", 5000, "orders TestManyInstances creates")

const (
	scaleClients     = 8 // concurrent create clients, one user each
	scaleLoginBudget = 5 // RATE_LIMIT_LOGIN_EMAIL of the run
	scaleStaleReads  = 20
)

// TestManyInstances runs two API instances and three workers processes on
// one database, one AMQP namespace and one Redis key prefix, as a scaled-out
// deployment does. Clients send to the API instances in turn and fail over
// to the other one when an instance does not answer. While orders are
// created, one API instance and one workers process are SIGKILLed. Then:
// every create got its 201 and no request a 5xx, every order is in the
// database and processed exactly once, the login budget is one budget for
// both instances, and a change made on one instance is what the other reads
// at once, through the shared Redis cache.
func TestManyInstances(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	sys := newSystem(t, testdb.New(t), topo, map[string]string{
		"PROCESS_ORDER_DURATION": "5ms",
		"DATABASE_MAX_CONNS":     "4", // five processes on one PostgreSQL shared with other tests
		"RATE_LIMIT_AUTH":        "1000/1h",
		"RATE_LIMIT_LOGIN_EMAIL": fmt.Sprintf("%d/1h", scaleLoginBudget),
		"RATE_LIMIT_USER":        "1000000/1m",
		"RATE_LIMIT_ANONYMOUS":   "1000000/1m",
		"CACHE_TTL":              "5m",
	})
	apis := []*proc.Proc{sys.api, startProc(t, "server", sys.env)}
	workers := []*proc.Proc{sys.workers, startProc(t, "workers", sys.env), startProc(t, "workers", sys.env)}
	lb := newFailover(t, apis)
	pool := openPool(t, sys.dbURL)

	t.Run("one login budget across the instances", func(t *testing.T) {
		lb.requireSharedLoginBudget(t)
	})

	// Orders for the stale-read checks, processed (only processed orders
	// are cached) before the load starts.
	staleUser, staleAuth := sys.newUser()
	staleOrders := processedOrders(t, sys, pool, staleAuth, scaleStaleReads)

	users := make([]client.RequestEditorFn, scaleClients)
	for i := range users {
		_, users[i] = sys.newUser()
	}

	load := &scaleLoad{lb: lb, total: *scaleOrders}
	start := time.Now()
	loadDone := make(chan struct{})
	go func() { defer close(loadDone); load.run(t, users) }()

	// Under the load: a change on one instance, read at once on the other.
	staleStart := time.Now()
	staleChecks := checkNoStaleReads(t, lb, staleUser, staleAuth, staleOrders)
	staleTook := time.Since(staleStart)
	hits := testhttp.Metric(testhttp.Get(t, apis[1].URL(process.HTTPAddr)+"/metrics"), `orders_cache_reads_total{outcome="hit"}`)
	require.Positive(t, hits, "the reads went through the Redis cache")

	// SIGKILL one API instance, then one workers process, mid-run.
	load.waitCreated(t, *scaleOrders*2/5)
	apiKilled := time.Now()
	lb.kill(1)
	require.Less(t, load.created.Load(), int64(*scaleOrders), "the API instance must be killed mid-run (stale-read checks took %s)", staleTook)
	load.waitCreated(t, *scaleOrders*11/20)
	workersKilled := time.Now()
	workers[1].Kill()
	require.Less(t, load.created.Load(), int64(*scaleOrders), "the workers process must be killed mid-run")
	var processedAtKill int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM orders WHERE processed_at IS NOT NULL").Scan(&processedAtKill))

	<-loadDone
	loadSeconds := time.Since(start).Seconds()
	drain, drained := waitDrained(t.Context(), pool, 2*time.Minute)
	require.True(t, drained, "every order processed and every event forwarded within 2 minutes of the load")

	ids := load.ids()
	require.Len(t, ids, *scaleOrders, "every create got its 201")
	var inDB, distinct int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*), count(DISTINCT id) FROM orders WHERE id = ANY($1)", ids).Scan(&inDB, &distinct))
	require.Equal(t, *scaleOrders, distinct, "every 201 names its own order, and it is in the database")
	var allOrders int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM orders").Scan(&allOrders))
	require.Equal(t, *scaleOrders+scaleStaleReads, allOrders, "no order created twice by a retry on the other instance")
	require.Less(t, processedAtKill-scaleStaleReads, *scaleOrders, "the workers process was killed mid-run")
	assertProcessedOnce(t, sys, pool, append(staleOrders, ids...), workers[1], workers[2])
	require.Zero(t, load.serverErrors(), "the API answered 5xx: %v", load.statuses())
	require.Positive(t, lb.connErrors.Load(), "requests met the killed instance and failed over")

	duplicates := 0
	for _, w := range workers {
		duplicates += len(w.Logs().Find("duplicate task ignored"))
	}
	t.Logf("%d orders by %d clients over 2 API instances and 3 workers processes in %.1f s: %.0f orders/s created; all processed %.1f s after the last create (%.0f orders/s end to end)",
		*scaleOrders, scaleClients, loadSeconds, float64(*scaleOrders)/loadSeconds, drain, float64(*scaleOrders)/(loadSeconds+drain))
	t.Logf("API instance SIGKILLed: %d connection errors (each request failed over to the survivor), first failed-over 201 %s after the kill; 5xx: %d; answers %v; idempotent replays %d",
		lb.connErrors.Load(), lb.firstFailover().Sub(apiKilled).Round(time.Millisecond), load.serverErrors(), load.statuses(), load.replays.Load())
	t.Logf("workers process SIGKILLed with %d of %d orders processed: longest stretch without an order processed after the kill %s; duplicates absorbed by the inbox %d",
		processedAtKill-scaleStaleReads, *scaleOrders, processingGap(t, pool, workersKilled).Round(time.Millisecond), duplicates)
	t.Logf("no stale read: %d changes made on one instance read back at once on the other, under the load, in %s (cache hits on the second instance: %.0f)",
		staleChecks, staleTook.Round(time.Millisecond), hits)
}

// processedOrders creates n orders for the user of auth and waits until
// every one is processed (only processed orders are cached).
func processedOrders(t *testing.T, sys *system, pool *pgxpool.Pool, auth client.RequestEditorFn, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, 0, n)
	for range n {
		resp, err := sys.client.CreateOrderWithResponse(t.Context(), nil, oneItemOrder(), auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
		ids = append(ids, resp.JSON201.Id)
	}
	waitAllProcessed(t, pool, ids, 60*time.Second)
	return ids
}

// failover sends each request to the API instances in turn; an instance that
// does not answer (connection refused or cut) is skipped for a second, and
// the request goes to the other one.
type failover struct {
	clients []*client.ClientWithResponses
	procs   []*proc.Proc

	connErrors atomic.Int64
	next       atomic.Uint64

	mu        sync.Mutex
	downUntil []time.Time
	failedAt  time.Time // first answer after a connection error
}

func newFailover(t *testing.T, apis []*proc.Proc) *failover {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	f := &failover{procs: apis, downUntil: make([]time.Time, len(apis))}
	for _, p := range apis {
		c, err := client.NewClientWithResponses(p.URL(process.HTTPAddr), client.WithHTTPClient(hc))
		require.NoError(t, err)
		f.clients = append(f.clients, c)
	}
	return f
}

func (f *failover) kill(i int) { f.procs[i].Kill() }

// pick is the next instance in turn, unless it is skipped and another is not.
func (f *failover) pick() int {
	i := int(f.next.Add(1) % uint64(len(f.clients))) //nolint:gosec // a small count
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	for range f.clients {
		if now.After(f.downUntil[i]) {
			return i
		}
		i = (i + 1) % len(f.clients)
	}
	return i
}

// do sends with send until an instance answers, within 20 s; send returns
// the HTTP status, or an error when no answer came.
func (f *failover) do(ctx context.Context, send func(*client.ClientWithResponses) (int, error)) (int, error) {
	failed := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		i := f.pick()
		status, err := send(f.clients[i])
		if err == nil {
			if failed {
				f.mu.Lock()
				if f.failedAt.IsZero() {
					f.failedAt = time.Now()
				}
				f.mu.Unlock()
			}
			return status, nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, errors.Join(err, ctx.Err())
		}
		failed = true
		f.connErrors.Add(1)
		f.mu.Lock()
		f.downUntil[i] = time.Now().Add(time.Second)
		f.mu.Unlock()
	}
}

func (f *failover) firstFailover() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failedAt
}

// requireSharedLoginBudget logs in to one account alternately on each
// instance, and to another on one instance only: both meet 429 at the same
// attempt, the budget's plus one. Budgets per instance would let the
// alternating logins through twice as often.
func (f *failover) requireSharedLoginBudget(t *testing.T) {
	t.Helper()
	firstRefused := func(instance func(attempt int) int) int {
		email := fmt.Sprintf("budget-%s@example.com", uuid.NewString())
		reg, err := f.clients[0].RegisterWithResponse(t.Context(), client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: "correct-horse"})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, reg.StatusCode(), string(reg.Body))
		for attempt := 1; attempt <= 2*scaleLoginBudget+1; attempt++ {
			tok, err := f.clients[instance(attempt)].CreateTokenWithFormdataBodyWithResponse(t.Context(),
				client.CreateTokenFormdataRequestBody{Username: email, Password: "correct-horse"})
			require.NoError(t, err)
			if tok.StatusCode() == http.StatusTooManyRequests {
				return attempt
			}
			require.Equal(t, http.StatusOK, tok.StatusCode(), string(tok.Body))
		}
		return 0
	}
	alternating := firstRefused(func(attempt int) int { return attempt % len(f.clients) })
	single := firstRefused(func(int) int { return 0 })
	require.Equal(t, scaleLoginBudget+1, single, "one instance refuses the login after the budget")
	require.Equal(t, single, alternating, "logins alternating between the instances meet the same budget")
	t.Logf("RATE_LIMIT_LOGIN_EMAIL=%d/1h: first 429 at attempt %d alternating between the instances, %d on one", scaleLoginBudget, alternating, single)
}

// checkNoStaleReads reads each order on one instance, changes its status
// on the other and reads it again at once on the first, twice per order
// (PAID, then SHIPPED, swapping the instances): every read returns the
// new status and the ETag the change answered. It returns the number of
// changes read back.
func checkNoStaleReads(t *testing.T, f *failover, user int64, auth client.RequestEditorFn, ids []uuid.UUID) int {
	t.Helper()
	checks, stale := readBackChanges(t, f, user, auth, ids)
	require.Empty(t, stale, "stale reads on the other instance")
	return checks
}

// readBackChanges is checkNoStaleReads's walk, returning the reads that
// were stale (a status or ETag older than the change's) instead of failing.
func readBackChanges(t *testing.T, f *failover, user int64, auth client.RequestEditorFn, ids []uuid.UUID) (checks int, stale []string) {
	t.Helper()
	a, b := f.clients[0], f.clients[1]
	read := func(c *client.ClientWithResponses, id uuid.UUID) (*client.GetOrderResponse, string) {
		resp, err := c.GetOrderWithResponse(t.Context(), id, nil, auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode(), string(resp.Body))
		return resp, resp.HTTPResponse.Header.Get("ETag")
	}
	for _, id := range ids {
		for _, step := range []struct {
			writer, reader *client.ClientWithResponses
			status         client.OrderStatus
		}{{a, b, client.OrderStatusPAID}, {b, a, client.OrderStatusSHIPPED}} {
			_, beforeTag := read(step.reader, id)
			read(step.reader, id) // a cache hit, if the first read filled the cache
			patch, err := step.writer.UpdateOrderStatusWithResponse(t.Context(), id, nil,
				client.UpdateOrderStatusJSONRequestBody{Status: step.status}, auth)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, patch.StatusCode(), string(patch.Body))
			tag := patch.HTTPResponse.Header.Get("ETag")
			require.NotEqual(t, beforeTag, tag, "the change makes a new ETag")
			after, afterTag := read(step.reader, id)
			require.Equal(t, user, after.JSON200.UserId)
			if after.JSON200.Status != step.status || afterTag != tag {
				stale = append(stale, fmt.Sprintf("%s: %s %s after the change to %s %s", id, after.JSON200.Status, afterTag, step.status, tag))
			}
			checks++
		}
	}
	return checks, stale
}

// scaleLoad creates total orders from one client per user, each create with
// an Idempotency-Key so that a retry on the other instance cannot create it
// twice.
type scaleLoad struct {
	lb      *failover
	total   int
	issued  atomic.Int64
	created atomic.Int64
	replays atomic.Int64

	mu       sync.Mutex
	orderIDs []uuid.UUID
	byStatus map[int]int // every answer, retries included
}

func (l *scaleLoad) run(t *testing.T, users []client.RequestEditorFn) {
	l.byStatus = map[int]int{}
	var wg sync.WaitGroup
	for _, auth := range users {
		wg.Go(func() {
			for l.issued.Add(1) <= int64(l.total) {
				if !l.create(t, auth) {
					return
				}
			}
		})
	}
	wg.Wait()
}

// create sends one create until it gets its 201 (a 409 is the same key
// still in flight on the instance that died: tried again). It reports
// whether it got one.
func (l *scaleLoad) create(t *testing.T, auth client.RequestEditorFn) bool {
	key := uuid.NewString()
	for {
		var resp *client.CreateOrderResponse
		status, err := l.lb.do(t.Context(), func(c *client.ClientWithResponses) (int, error) {
			r, err := c.CreateOrderWithResponse(t.Context(), &client.CreateOrderParams{IdempotencyKey: &key}, oneItemOrder(), auth)
			if err != nil {
				return 0, err
			}
			resp = r
			return r.StatusCode(), nil
		})
		if err != nil {
			t.Errorf("no instance answered: %v", err)
			return false
		}
		l.mu.Lock()
		l.byStatus[status]++
		l.mu.Unlock()
		switch status {
		case http.StatusCreated:
			if resp.HTTPResponse.Header.Get("Idempotent-Replayed") == "true" {
				l.replays.Add(1)
			}
			l.mu.Lock()
			l.orderIDs = append(l.orderIDs, resp.JSON201.Id)
			l.mu.Unlock()
			l.created.Add(1)
			return true
		case http.StatusConflict:
			time.Sleep(50 * time.Millisecond)
		default:
			t.Errorf("create refused: %d %s", status, resp.Body)
			return false
		}
	}
}

func (l *scaleLoad) waitCreated(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return l.created.Load() >= int64(n) }, 5*time.Minute, 5*time.Millisecond,
		"the load never reached %d orders", n)
}

func (l *scaleLoad) ids() []uuid.UUID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uuid.UUID(nil), l.orderIDs...)
}

func (l *scaleLoad) statuses() map[int]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for k, v := range l.byStatus {
		out[k] = v
	}
	return out
}

func (l *scaleLoad) serverErrors() int {
	n := 0
	for status, count := range l.statuses() {
		if status >= 500 {
			n += count
		}
	}
	return n
}

// processingGap is the longest stretch without an order processed from
// since until the last order processed, from processed_at.
func processingGap(t *testing.T, pool *pgxpool.Pool, since time.Time) time.Duration {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT DISTINCT processed_at FROM orders WHERE processed_at >= $1 ORDER BY processed_at", since)
	require.NoError(t, err)
	defer rows.Close()
	var gap time.Duration
	last := since
	for rows.Next() {
		var at time.Time
		require.NoError(t, rows.Scan(&at))
		gap = max(gap, at.Sub(last))
		last = at
	}
	require.NoError(t, rows.Err())
	return gap
}
