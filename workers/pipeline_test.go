package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/forwarder"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/internal/outbox"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
	"github.com/ordersvc/orders/money"
)

func TestNewOrderIsProcessedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)

	created := make([]orders.Order, 5)
	for i := range created {
		created[i] = e.createOrder()
	}
	for _, o := range created {
		processedAt := e.waitProcessed(o.ID, 20*time.Second)
		require.True(t, processedAt.After(o.CreatedAt), "processed_at %s is not after created_at %s", processedAt, o.CreatedAt)
	}
	for _, o := range created {
		require.Eventually(t, func() bool { return countLogs(w, "order processed", o.ID.String()) == 1 }, 5*time.Second, 20*time.Millisecond,
			"want exactly one 'order processed' line for %s", o.ID)
	}
	backlog, err := db.New(e.pool).OutboxBacklog(context.Background())
	require.NoError(t, err)
	require.Zero(t, backlog.Pending, "every event is forwarded")
}

func TestStatusChangeEventReachesItsConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)
	o := e.createOrder()

	_, err := e.orders.UpdateStatus(context.Background(), e.userID, o.ID, orders.StatusPaid)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return countLogs(w, "order status changed", o.ID.String()) == 1 }, 20*time.Second, 20*time.Millisecond)
	rec := w.logs.Find("order status changed")[0]
	require.Equal(t, "PENDING", rec["from"])
	require.Equal(t, "PAID", rec["to"])
}

func TestDuplicateTaskHasOneEffect(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)
	o := e.createOrder()
	first := e.waitProcessed(o.ID, 20*time.Second)

	// Deliver the very task the pipeline already handled (same message id,
	// as after a broker restart) twice more.
	event := events.Head{ID: uuid.Must(uuid.NewV7()), OrderID: o.ID}
	task, err := events.NewProcessOrderTask(event, "")
	require.NoError(t, err)
	pub, err := amqp.NewPublisher(e.topo.Tasks(1), watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	require.NoError(t, pub.Publish(events.TopicProcessOrder, task))
	require.NoError(t, pub.Publish(events.TopicProcessOrder, task.Copy()))

	require.Eventually(t, func() bool { return countLogs(w, "duplicate task ignored", o.ID.String()) == 1 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, 2, countLogs(w, "order processed", o.ID.String()), "the new task id applies once (processed_at kept), its copy not at all")
	require.Equal(t, first, e.waitProcessed(o.ID, time.Second), "processed_at is set exactly once")
}

func TestPoisonMessageGoesToDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// Retries with long backoff: a decodable failure would take > 1 minute.
	w := e.start(map[string]string{"HANDLER_MAX_RETRIES": "5", "HANDLER_RETRY_BACKOFF": "10s"})

	ch := e.amqpChannel()
	start := time.Now()
	require.NoError(t, ch.PublishWithContext(context.Background(), "", e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler)), false, false,
		amqp091.Publishing{Body: []byte("{not json"), DeliveryMode: amqp091.Persistent,
			Headers: amqp091.Table{amqp.DefaultMessageUUIDHeaderKey: "poison-1"}}))

	dlq := e.topo.Queue(messaging.DeadLetters)
	require.Eventually(t, func() bool { return e.queueDepth(dlq) == 1 }, 10*time.Second, 20*time.Millisecond)
	require.Less(t, time.Since(start), 5*time.Second, "an undecodable message is not retried")

	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "list"}, e.getenv(), &out))
	var dl DeadLetter
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out.String())), &dl), out.String())
	require.Equal(t, "poison-1", dl.MessageID)
	require.Equal(t, events.TopicProcessOrder, dl.Topic)
	require.Equal(t, messaging.ProcessOrderHandler, dl.Handler)
	require.Contains(t, dl.Reason, "undecodable")
	require.Equal(t, 1, e.queueDepth(dlq), "listing leaves dead letters queued")
	require.Empty(t, w.logs.Find("order processed"))
}

func TestDeadLetterReplayedAfterTheCauseIsFixed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)

	// A task for an order that does not exist yet fails every retry.
	missing, _ := e.publishTaskForMissingOrder("req-1")
	dlq := e.topo.Queue(messaging.DeadLetters)
	require.Eventually(t, func() bool { return e.queueDepth(dlq) == 1 }, 20*time.Second, 20*time.Millisecond)

	// Fix the cause, then replay.
	_, err := db.New(e.pool).CreateOrder(context.Background(), db.CreateOrderParams{
		ID: missing, UserID: e.userID, Items: json.RawMessage(`[{"product_id":1,"quantity":1,"price":1}]`),
		TotalPrice: money.MustParse("1"), CreatedAt: time.Now(),
	})
	require.NoError(t, err)
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "replay"}, e.getenv(), &out))
	require.Contains(t, out.String(), "replayed 1 dead letters")

	e.waitProcessed(missing, 20*time.Second)
	require.Equal(t, 0, e.queueDepth(dlq))
	rec := w.logs.Find("order processed")
	require.Len(t, rec, 1)
	require.Equal(t, "req-1", rec[0]["request_id"], "the replayed message keeps its metadata")
}

func TestShutdownRequeuesTheTaskInHand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(map[string]string{"PROCESS_ORDER_DURATION": "3s"})
	o := e.createOrder()

	// Stop the workers while the task is being worked on.
	_, ok := w.logs.WaitFor("processing order", 20*time.Second)
	require.True(t, ok, "the task never started")
	w.stop(t)

	// Nothing is lost or left unacked: the task is back in its queue.
	require.Equal(t, 1, e.queueDepth(e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))), "the interrupted task is requeued")
	row, err := db.New(e.pool).GetOrder(context.Background(), o.ID)
	require.NoError(t, err)
	require.Nil(t, row.ProcessedAt, "interrupted work is not recorded")

	// The next workers process finishes it, once.
	again := e.start(map[string]string{"PROCESS_ORDER_DURATION": "10ms"})
	e.waitProcessed(o.ID, 20*time.Second)
	require.Eventually(t, func() bool { return countLogs(again, "order processed", o.ID.String()) == 1 }, 5*time.Second, 20*time.Millisecond)
}

func TestForwardedOutboxRowsArePurgedAfterRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)
	o := e.createOrder()
	e.waitProcessed(o.ID, 20*time.Second)
	w.stop(t)

	e.createOrder() // not forwarded: the workers are stopped
	q := db.New(e.pool)
	purgeOnce(context.Background(), q, 0, slog.New(slog.DiscardHandler))

	backlog, err := q.OutboxBacklog(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, backlog.Pending, "the unforwarded event survives retention")
	deleted, err := q.DeleteForwardedOutbox(context.Background(), time.Now())
	require.NoError(t, err)
	require.Zero(t, deleted, "forwarded rows were already purged")
}

// countLogs counts the records with message msg that mention orderID.
func countLogs(w *workersProc, msg, orderID string) int {
	n := 0
	for _, r := range w.logs.Find(msg) {
		if r["order_id"] == orderID {
			n++
		}
	}
	return n
}

func (e *env) getenv() func(string) string {
	vars := map[string]string{"DATABASE_URL": e.dbURL, "AMQP_URL": e.topo.URL, "AMQP_NAMESPACE": e.topo.Namespace,
		"AMQP_QUEUE_TYPE": e.topo.QueueType}
	return func(k string) string { return vars[k] }
}

// An event RabbitMQ refuses (a queue bound to the exchange is full and
// rejects publishes) is not marked forwarded: its outbox row stays pending
// and is sent again until the broker takes it.
func TestRefusedEventStaysInTheOutbox(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(map[string]string{"OUTBOX_FORWARDERS": "1"})
	ch := e.amqpChannel()
	full := e.topo.EventQueue(events.TopicNewOrder, "full")
	_, err := ch.QueueDeclare(full, false, true, false, false, amqp091.Table{"x-max-length": 0, "x-overflow": "reject-publish"})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(full, "", e.topo.Name(events.TopicNewOrder), false, nil))

	o := e.createOrder()
	q := db.New(e.pool)
	// Refused again and again: the row stays pending.
	time.Sleep(2 * time.Second)
	backlog, err := q.OutboxBacklog(context.Background())
	require.NoError(t, err)
	require.EqualValues(t, 1, backlog.Pending, "a refused event is not marked forwarded")

	_, err = ch.QueueDelete(full, false, false, false)
	require.NoError(t, err)
	e.waitProcessed(o.ID, 20*time.Second)
	require.Eventually(t, func() bool {
		b, err := q.OutboxBacklog(context.Background())
		return err == nil && b.Pending == 0
	}, 20*time.Second, 50*time.Millisecond, "forwarded once the broker takes it")
}

// An event committed after events with newer offsets were forwarded (its
// transaction was slow) is still forwarded: forwarders start their claims
// after rows already forwarded, but scan from the start every
// forwarder.FullScanInterval.
func TestEventCommittedOutOfOrderIsForwarded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(map[string]string{"OUTBOX_FORWARDERS": "2"})
	ctx := context.Background()

	// The slow transaction takes its outbox offset first...
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	slow := uuid.Must(uuid.NewV7())
	_, err = db.New(tx).CreateOrder(ctx, db.CreateOrderParams{ID: slow, UserID: e.userID,
		Items: []byte(`[{"product_id":1,"quantity":1,"price":"1.00"}]`), TotalPrice: money.MustParse("1.00"), CreatedAt: time.Now().UTC()})
	require.NoError(t, err)
	msg, err := events.NewOrderEvent(ctx, events.Order{ID: slow, UserID: e.userID, TotalPrice: money.MustParse("1.00"), Status: "PENDING"})
	require.NoError(t, err)
	require.NoError(t, outbox.Publish(tx, events.TopicNewOrder, msg))

	// ...while later orders commit, get forwarded and processed.
	for range 3 {
		for range 20 {
			e.createOrder()
		}
		time.Sleep(100 * time.Millisecond)
	}
	last := e.createOrder()
	e.waitProcessed(last.ID, 20*time.Second)

	require.NoError(t, tx.Commit(ctx))
	committed := time.Now()
	processedAt := e.waitProcessed(slow, 20*time.Second)
	require.Less(t, processedAt.Sub(committed), forwarder.FullScanInterval+2*time.Second,
		"found by the next full scan")
}

// A task the broker refuses is a failed attempt of start_processing: it is
// retried with backoff, past HANDLER_MAX_RETRIES, and counted; never spun on
// (the old router published the task after the retry middleware and
// redelivered the event at once, thousands of times a second) and never
// dead-lettered. Once the broker takes tasks again the order is processed,
// once.
func TestTaskTheBrokerRefusesWaitsForTheBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const retries, backoff = 1, 50 * time.Millisecond
	w := e.start(map[string]string{"START_PROCESSING_CONCURRENCY": "1",
		"HANDLER_MAX_RETRIES": strconv.Itoa(retries), "HANDLER_RETRY_BACKOFF": backoff.String()})
	accept := testamqp.RefusePublishes(t, e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler)))
	created := time.Now() // no attempt before this
	o := e.createOrder()

	failed := func() float64 {
		return testhttp.Metric(scrape(t, w), `orders_handler_attempts_total{handler="start_processing",outcome="error"}`)
	}
	require.Eventually(t, func() bool { return failed() > 0 }, 20*time.Second, 10*time.Millisecond, "the refused task is a failed attempt")
	time.Sleep(3 * time.Second)
	attempts, window := failed(), time.Since(created)

	// Waits of 50, 100, 200 ms...: k attempts take at least (2^(k-1) - 1) x 50 ms.
	maxAttempts := int(math.Log2(float64(window/backoff)+1)) + 1
	require.Greater(t, attempts, float64(retries+1), "retried past HANDLER_MAX_RETRIES while the broker refuses")
	require.LessOrEqual(t, attempts, float64(maxAttempts), "attempts beyond what the backoff allows in %s", window)
	body := scrape(t, w)
	require.InDelta(t, attempts, testhttp.Metric(body, "orders_handler_retries_total"), 1, "each failed attempt is followed by a retry")
	require.NotRegexp(t, `orders_dead_lettered_total\{[^}]*\} [1-9]`, body, "a refused task does not park its event")
	require.Zero(t, e.queueDepth(e.topo.Queue(messaging.DeadLetters)))

	accept()
	e.waitProcessed(o.ID, 20*time.Second)
	require.Eventually(t, func() bool { return countLogs(w, "order processed", o.ID.String()) == 1 }, 5*time.Second, 20*time.Millisecond)
	t.Logf("%.0f failed attempts in %s while the broker refused the task", attempts, window.Round(time.Millisecond))
}
