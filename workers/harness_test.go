package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
	"github.com/ordersvc/orders/money"
)

// env is one test's world: its own database and its own RabbitMQ namespace.
type env struct {
	t      *testing.T
	dbURL  string
	pool   *pgxpool.Pool
	orders *orders.Service
	topo   messaging.Topology
	userID int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dbURL := testdb.New(t)
	pool, err := database.Open(context.Background(), dbURL, 8, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	user, err := db.New(pool).CreateUser(context.Background(), db.CreateUserParams{Email: "w@example.com", PasswordHash: "x"})
	require.NoError(t, err)
	e := &env{t: t, dbURL: dbURL, pool: pool, orders: orders.NewService(pool, orders.WithAnnouncer(testdb.Announcer(t, pool))), userID: user.ID,
		topo: testamqp.Namespace(t)}
	return e
}

// workersProc is a workers process started through run.
type workersProc struct {
	*proc.Proc
	logs *testlog.Sink
	addr string // the status endpoint's
}

// start runs the workers with the test defaults plus overrides, once ready
// (READY=1: the router runs and PostgreSQL answers).
func (e *env) start(overrides map[string]string) *workersProc {
	e.t.Helper()
	return e.startRun(run, overrides)
}

// startRun is start with another entry point than run: runRoutes serving a
// table of routes of the test's own.
func (e *env) startRun(entry process.Run, overrides map[string]string) *workersProc {
	e.t.Helper()
	vars := map[string]string{
		"DATABASE_URL":           e.dbURL,
		"AMQP_URL":               e.topo.URL,
		"AMQP_NAMESPACE":         e.topo.Namespace,
		"AMQP_QUEUE_TYPE":        e.topo.QueueType,
		"WORKERS_HTTP_ADDR":      "127.0.0.1:0",
		"PROCESS_ORDER_DURATION": "10ms",
		"PROCESS_CONCURRENCY":    "4",
		"HANDLER_MAX_RETRIES":    "2",
		"HANDLER_RETRY_BACKOFF":  "10ms",
		"LOG_LEVEL":              "debug",
	}
	for k, v := range overrides {
		vars[k] = v
	}
	testdb.ProcessEnv(vars)
	p, err := proc.StartFunc(context.Background(), proc.Func{Name: "workers", Run: entry, Env: vars, ReadyTimeout: 30 * time.Second})
	require.NoError(e.t, err)
	w := &workersProc{Proc: p, logs: p.Logs(), addr: p.Addr(process.WorkersHTTPAddr)}
	e.t.Cleanup(func() {
		w.stop(e.t)
		if e.t.Failed() {
			e.t.Log(p.Tail(200))
		}
	})
	return w
}

// stop cancels the workers and waits for a clean exit (idempotent).
func (w *workersProc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, w.Stop(60*time.Second), "the workers' shutdown")
}

// createOrder creates an order through the same service the API uses.
func (e *env) createOrder() orders.Order {
	e.t.Helper()
	o, err := e.orders.Create(context.Background(), e.userID, []orders.Item{{ProductID: 1, Quantity: 2, Price: money.MustParse("2.90")}})
	require.NoError(e.t, err)
	return o
}

// waitProcessed waits until the order has processed_at and returns it.
func (e *env) waitProcessed(id uuid.UUID, timeout time.Duration) time.Time {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		o, err := db.New(e.pool).GetOrder(context.Background(), id)
		require.NoError(e.t, err)
		if o.ProcessedAt != nil {
			return *o.ProcessedAt
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("order %s not processed within %s", id, timeout)
	return time.Time{}
}

// amqpChannel opens a channel to the broker for the test's own publishing.
func (e *env) amqpChannel() *amqp091.Channel {
	e.t.Helper()
	conn, err := amqp091.Dial(e.topo.URL)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(e.t, err)
	return ch
}

// queueDepth returns the number of ready messages in queue.
func (e *env) queueDepth(queue string) int { return testamqp.QueueDepth(e.t, queue) }

// publishTaskForMissingOrder publishes a process_order task for an order
// that does not exist (yet), which fails every attempt, and returns the
// order's id and the task's message id.
func (e *env) publishTaskForMissingOrder(requestID string) (orderID uuid.UUID, messageID string) {
	e.t.Helper()
	missing := uuid.Must(uuid.NewV7())
	task, err := events.NewProcessOrderTask(events.Head{ID: uuid.Must(uuid.NewV7()), OrderID: missing}, requestID)
	require.NoError(e.t, err)
	pub, err := amqp.NewPublisher(e.topo.Tasks(1), watermill.NopLogger{})
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = pub.Close() })
	require.NoError(e.t, pub.Publish(events.TopicProcessOrder, task))
	return missing, task.UUID
}

// publishing is a persistent AMQP message with a Watermill message id.
func publishing(body []byte) amqp091.Publishing {
	return amqp091.Publishing{Body: body, DeliveryMode: amqp091.Persistent,
		Headers: amqp091.Table{"_watermill_message_uuid": "raw-" + uuid.NewString()}}
}
