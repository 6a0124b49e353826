package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
)

// waitDrained waits until every order in the database is processed and the
// outbox is empty, up to limit; it returns how long that took.
func waitDrained(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) (float64, bool) {
	start := time.Now()
	for {
		var unprocessed, unforwarded int
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders WHERE processed_at IS NULL),
			(SELECT count(*) FROM outbox_messages WHERE NOT acked)`).Scan(&unprocessed, &unforwarded)
		if err == nil && unprocessed == 0 && unforwarded == 0 {
			return time.Since(start).Seconds(), true
		}
		if time.Since(start) > limit || !sleepCtx(ctx, 200*time.Millisecond) {
			return time.Since(start).Seconds(), false
		}
	}
}

// servicesBack reports, for each service and process, "ok" or what is wrong.
func (r *chaosRun) servicesBack(ctx context.Context) map[string]string {
	out := map[string]string{}
	// The API's readiness covers PostgreSQL and Redis (its breaker closed
	// again); it may take a second or two after the last fault.
	api := "not ready"
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		resp, err := r.sys.client.GetReadyWithResponse(ctx)
		switch {
		case err != nil:
			api = err.Error()
		case resp.JSON200 == nil:
			api = fmt.Sprintf("ready: %d", resp.StatusCode())
		case resp.JSON200.Status != "ok":
			api = fmt.Sprintf("ready: %s %v", resp.JSON200.Status, resp.JSON200.Optional)
		default:
			api = "ok"
		}
		if api == "ok" || !sleepCtx(ctx, 200*time.Millisecond) {
			break
		}
	}
	out["api (postgres, redis)"] = api
	for i, p := range r.workers {
		out[fmt.Sprintf("workers %d", i+1)] = workersReady(ctx, p)
	}
	out["rabbitmq"] = "ok"
	if conn, err := amqp091.Dial(testamqp.URL()); err != nil {
		out["rabbitmq"] = err.Error()
	} else {
		_ = conn.Close()
	}
	return out
}

func workersReady(ctx context.Context, p *proc.Proc) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL(process.WorkersHTTPAddr)+"/ready", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "ready: " + resp.Status
	}
	return "ok"
}

// chaosAudit compares what the clients were told with the database.
type chaosAudit struct {
	Created      int `json:"created_201"`
	Orders       int `json:"orders_in_database"`
	Missing      int `json:"missing"`                  // 201s whose order is not in the database
	Lost         int `json:"lost"`                     // 201s whose order was never processed
	Unprocessed  int `json:"unprocessed"`              // orders never processed, announced by a 201 or not
	Without201   int `json:"orders_without_201"`       // committed, but the client got no 201 (its answer was cut)
	EventsNotOne int `json:"orders_without_one_event"` // orders with other than one new_order event
	AppliedTwice int `json:"applied_twice"`            // orders with more than one task in the inbox
	NotApplied   int `json:"not_applied"`              // orders with no task in the inbox
	StrayInbox   int `json:"stray_inbox_rows"`         // inbox rows of no order's task
	LoggedTwice  int `json:"processed_logged_twice"`   // orders with two "order processed" lines
	Redelivered  int `json:"duplicate_tasks_ignored"`  // redelivered tasks the inbox absorbed
	DeadLetters  int `json:"dead_letters"`
	// Commit (created_at) to processed_at of the processed orders, and the
	// orders committed but not yet processed each second since the load
	// started, from the same columns.
	LatencyP50ms float64 `json:"commit_to_processed_p50_ms"`
	LatencyP99ms float64 `json:"commit_to_processed_p99_ms"`
	LatencyMaxms float64 `json:"commit_to_processed_max_ms"`
	Backlog      []int   `json:"backlog_per_second"`
	BacklogMax   int     `json:"backlog_max"`
	Processed    []int   `json:"processed_per_second"` // orders processed in each of those seconds
}

// auditOrders checks every 201 and every order against the database: the
// order exists and is processed, it has one new_order event, and the inbox
// holds exactly one task for it (the task id derives from the event id).
func auditOrders(t *testing.T, pool *pgxpool.Pool, topo messaging.Topology, start time.Time, calls []chaosCall, workers []*proc.Proc) chaosAudit {
	t.Helper()
	ctx := context.Background()
	var a chaosAudit
	processed := map[uuid.UUID]bool{}
	var createdAt, processedAt []time.Time
	var latencies []float64
	rows, err := pool.Query(ctx, "SELECT id, created_at, processed_at FROM orders")
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		var created time.Time
		var done *time.Time
		require.NoError(t, rows.Scan(&id, &created, &done))
		processed[id] = done != nil
		createdAt = append(createdAt, created)
		if done == nil {
			a.Unprocessed++
			continue
		}
		processedAt = append(processedAt, *done)
		latencies = append(latencies, float64(done.Sub(created).Microseconds())/1000)
	}
	require.NoError(t, rows.Err())
	a.Orders = len(processed)
	if n := len(latencies); n > 0 {
		slices.Sort(latencies)
		a.LatencyP50ms, a.LatencyP99ms, a.LatencyMaxms = latencies[n/2], latencies[(n-1)*99/100], latencies[n-1]
	}
	a.Backlog, a.Processed = backlog(start, createdAt, processedAt)
	if len(a.Backlog) > 0 {
		a.BacklogMax = slices.Max(a.Backlog)
	}

	announced := map[uuid.UUID]bool{}
	for _, c := range calls {
		if c.op != opCreate || c.status != http.StatusCreated {
			continue
		}
		a.Created++
		announced[c.order] = true
		switch done, ok := processed[c.order]; {
		case !ok:
			a.Missing++
		case !done:
			a.Lost++
		}
	}
	for id := range processed {
		if !announced[id] {
			a.Without201++
		}
	}

	inbox := map[string]bool{}
	rows, err = pool.Query(ctx, "SELECT message_id FROM processed_messages WHERE handler = $1", messaging.ProcessOrderHandler)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		inbox[id] = true
	}
	require.NoError(t, rows.Err())
	eventsOf := map[uuid.UUID]int{}
	applied := map[uuid.UUID]int{}
	// Each outbox row is Watermill's forwarder envelope around the event.
	rows, err = pool.Query(ctx, `SELECT payload->>'payload' FROM outbox_messages WHERE payload->>'destination_topic' = $1`, events.TopicNewOrder)
	require.NoError(t, err)
	for rows.Next() {
		var encoded string
		require.NoError(t, rows.Scan(&encoded))
		payload, err := base64.StdEncoding.DecodeString(encoded)
		require.NoError(t, err)
		event, err := events.DecodeHead(message.NewMessage("", payload))
		require.NoError(t, err)
		eventsOf[event.OrderID]++
		task, err := events.NewProcessOrderTask(event, "")
		require.NoError(t, err)
		if inbox[task.UUID] {
			applied[event.OrderID]++
			delete(inbox, task.UUID)
		}
	}
	require.NoError(t, rows.Err())
	a.StrayInbox = len(inbox)
	for id := range processed {
		if eventsOf[id] != 1 {
			a.EventsNotOne++
		}
		switch {
		case applied[id] > 1:
			a.AppliedTwice++
		case applied[id] == 0:
			a.NotApplied++
		}
	}

	logged := map[string]int{}
	for _, p := range workers {
		for _, rec := range p.Logs().Find("order processed") {
			id, _ := rec["order_id"].(string)
			logged[id]++
		}
		a.Redelivered += len(p.Logs().Find("duplicate task ignored"))
	}
	for _, n := range logged {
		if n > 1 {
			a.LoggedTwice++
		}
	}
	a.DeadLetters = testamqp.QueueDepthAt(t, topo, topo.Queue(messaging.DeadLetters))
	return a
}

// backlog counts, each second from start until the last order was
// processed, the orders committed and not yet processed, and the orders
// processed since the previous second.
func backlog(start time.Time, created, processed []time.Time) (waiting, done []int) {
	slices.SortFunc(created, time.Time.Compare)
	slices.SortFunc(processed, time.Time.Compare)
	for at, c, p := start, 0, 0; len(processed) > 0 && !at.After(processed[len(processed)-1].Add(time.Second)); at = at.Add(time.Second) {
		for c < len(created) && !created[c].After(at) {
			c++
		}
		before := p
		for p < len(processed) && !processed[p].After(at) {
			p++
		}
		waiting = append(waiting, c-p)
		done = append(done, p-before)
	}
	return waiting, done
}
