package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// TestOrdersSurviveRabbitMQOutage: with the broker down, the API still
// creates orders (their events wait in the outbox); once it is back, every
// order is processed exactly once.
func TestOrdersSurviveRabbitMQOutage(t *testing.T) {
	topo := testamqp.Outage(t)
	sys := newSystem(t, testdb.New(t), topo, nil)
	auth := sys.login()
	pool := openPool(t, sys.dbURL)

	testamqp.Stop(t)
	var ids []uuid.UUID
	for range 20 {
		resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
		ids = append(ids, resp.JSON201.Id)
	}
	backlog := outboxStatus(t, sys)
	require.EqualValues(t, 20, backlog.Pending, "the events wait in the outbox")
	require.Greater(t, backlog.OldestAgeSeconds, 0.0)

	testamqp.Start(t)
	waitAllProcessed(t, pool, ids, 90*time.Second)
	assertProcessedOnce(t, sys, pool, ids)
	require.Zero(t, outboxStatus(t, sys).Pending)
	t.Logf("duplicates absorbed by the inbox after the outage: %d", len(sys.workers.Logs().Find("duplicate task ignored")))
}

// TestRabbitMQStopsWhileForwarding: the broker goes away while batches are
// on the wire, their confirms outstanding. Nothing is lost: every batch whose
// confirms did not all arrive stays in the outbox and is sent again once the
// broker is back; the copies that had arrived are absorbed by the inbox.
func TestRabbitMQStopsWhileForwarding(t *testing.T) {
	topo := testamqp.Outage(t)
	sys := newSystem(t, testdb.New(t), topo, map[string]string{"PROCESS_CONCURRENCY": "16", "RATE_LIMIT_ENABLED": "false"})
	auth := sys.login()
	pool := openPool(t, sys.dbURL)

	var (
		mu  sync.Mutex
		ids []uuid.UUID
		wg  sync.WaitGroup
	)
	stop := make(chan struct{})
	for range 8 { // creating all along, before, during and after the outage
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
				// Reported, not required: FailNow must not run off the test goroutine.
				if err != nil {
					t.Errorf("create order: %v", err)
					return
				}
				if resp.StatusCode() != http.StatusCreated {
					t.Errorf("create order: %d %s", resp.StatusCode(), resp.Body)
					return
				}
				mu.Lock()
				ids = append(ids, resp.JSON201.Id)
				mu.Unlock()
			}
		})
	}
	// Stop the broker once the pipeline is in full flow.
	_, ok := sys.workers.Logs().WaitFor("order processed", 30*time.Second)
	require.True(t, ok)
	time.Sleep(500 * time.Millisecond)
	testamqp.Stop(t)
	time.Sleep(time.Second)
	pending := outboxStatus(t, sys).Pending
	require.Positive(t, pending, "events wait in the outbox while the broker is down")

	testamqp.Start(t)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	waitAllProcessed(t, pool, ids, 120*time.Second)
	assertProcessedOnce(t, sys, pool, ids)
	require.Eventually(t, func() bool { return outboxStatus(t, sys).Pending == 0 }, 30*time.Second, 100*time.Millisecond)
	t.Logf("%d orders; %d events waiting during the outage; duplicates absorbed by the inbox: %d",
		len(ids), pending, len(sys.workers.Logs().Find("duplicate task ignored")))
}

// TestWorkersKilledMidRunLoseNothing: SIGKILL while tasks are in flight,
// restart, and every order ends processed exactly once.
func TestWorkersKilledMidRunLoseNothing(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	sys := newSystem(t, testdb.New(t), topo, map[string]string{
		"PROCESS_ORDER_DURATION": "300ms",
		"PROCESS_CONCURRENCY":    "4",
	})
	auth := sys.login()
	pool := openPool(t, sys.dbURL)

	var ids []uuid.UUID
	for range 30 {
		resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
		ids = append(ids, resp.JSON201.Id)
	}
	_, ok := sys.workers.Logs().WaitFor("order processed", 30*time.Second)
	require.True(t, ok)
	first := sys.workers
	first.Kill()
	done := len(first.Logs().Find("order processed"))
	require.Less(t, done, len(ids), "the kill must land mid-run")

	sys.startWorkers()
	waitAllProcessed(t, pool, ids, 90*time.Second)
	assertProcessedOnce(t, sys, pool, ids, first)
	t.Logf("processed before SIGKILL: %d of %d; duplicates absorbed: %d", done, len(ids), len(sys.workers.Logs().Find("duplicate task ignored")))
}

func oneItemOrder() client.CreateOrderJSONRequestBody {
	var body client.CreateOrderJSONRequestBody
	if err := json.Unmarshal([]byte(`{"items":[{"product_id":7,"quantity":2,"price":2.9}]}`), &body); err != nil {
		panic(err)
	}
	return body
}

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

type outboxBacklog struct {
	Pending          int64   `json:"pending"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

func outboxStatus(t *testing.T, sys *system) outboxBacklog {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, sys.workers.URL(process.WorkersHTTPAddr)+"/outbox", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var b outboxBacklog
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&b))
	return b
}

func waitAllProcessed(t *testing.T, pool *pgxpool.Pool, ids []uuid.UUID, timeout time.Duration) {
	t.Helper()
	q := db.New(pool)
	require.Eventually(t, func() bool {
		for _, id := range ids {
			o, err := q.GetOrder(context.Background(), id)
			if err != nil || o.ProcessedAt == nil {
				return false
			}
		}
		return true
	}, timeout, 100*time.Millisecond, "not every order got processed_at")
}

// assertProcessedOnce checks the inbox (one task applied per order) and the
// logs of every workers process (never two "order processed" lines for one
// order; a process killed between commit and log line may have written none).
func assertProcessedOnce(t *testing.T, sys *system, pool *pgxpool.Pool, ids []uuid.UUID, earlier ...*proc.Proc) {
	t.Helper()
	var inbox int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM processed_messages WHERE handler = 'process_order'").Scan(&inbox))
	require.Equal(t, len(ids), inbox, "one applied task per order")
	seen := map[string]int{}
	for _, p := range append(earlier, sys.workers) {
		for _, rec := range p.Logs().Find("order processed") {
			id, _ := rec["order_id"].(string)
			seen[id]++
		}
	}
	for _, id := range ids {
		require.LessOrEqual(t, seen[id.String()], 1, "order %s processed more than once", id)
	}
}
