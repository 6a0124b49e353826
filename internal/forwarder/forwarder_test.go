package forwarder_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/forwarder"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/money"
)

// outboxEnv is one test's outbox (its own database) and RabbitMQ namespace,
// with a queue bound to the new_order exchange that the test reads.
type outboxEnv struct {
	t      *testing.T
	dbURL  string
	pool   *pgxpool.Pool
	topo   messaging.Topology
	queue  string
	conn   *amqp.ConnectionWrapper
	orders *orders.Service
	userID int64
}

const testHandler = "forwarder_test"

func newOutboxEnv(t *testing.T) *outboxEnv {
	t.Helper()
	pool, dbURL := testdb.Pool(t, 8)
	topo := testamqp.Namespace(t)
	queue := topo.EventQueue(events.TopicNewOrder, testHandler)
	testamqp.OwnQueues(t, topo, queue)
	// A consumer group's queue, bound before anything is forwarded.
	sub, err := amqp.NewSubscriber(topo.Events(testHandler), watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, sub.SubscribeInitialize(events.TopicNewOrder))
	require.NoError(t, sub.Close())
	conn, err := amqp.NewConnection(topo.Events("").Connection, watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	user, err := db.New(pool).CreateUser(t.Context(), db.CreateUserParams{Email: "f@example.com", PasswordHash: "x"})
	require.NoError(t, err)
	return &outboxEnv{t: t, dbURL: dbURL, pool: pool, topo: topo, queue: queue,
		conn: conn, orders: orders.NewService(pool, orders.WithAnnouncer(testdb.Announcer(t, pool))), userID: user.ID}
}

// createOrders creates n orders, each with its new_order event in the outbox.
func (e *outboxEnv) createOrders(n int) []uuid.UUID {
	e.t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		o, err := e.orders.Create(e.t.Context(), e.userID, []orders.Item{{ProductID: 1, Quantity: 1, Price: money.MustParse("1.50")}})
		require.NoError(e.t, err)
		ids[i] = o.ID
	}
	return ids
}

func (e *outboxEnv) publisher() *forwarder.PipelinedPublisher {
	pub := forwarder.NewPipelinedPublisher(e.conn, e.topo.Events(""), watermill.NopLogger{})
	e.t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// running is a forwarder running until stop.
type running struct {
	*forwarder.Forwarder
	stop context.CancelFunc
	done chan struct{} // closed when Run returned err
	err  error
}

func (e *outboxEnv) start(pub forwarder.Publisher, pacer *forwarder.Pacer, batch int) *running {
	e.t.Helper()
	fw, err := forwarder.New(e.pool, pub, pacer, batch, watermill.NopLogger{})
	require.NoError(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Forwarder: fw, stop: cancel, done: make(chan struct{})}
	go func() {
		r.err = fw.Run(ctx)
		close(r.done)
	}()
	e.t.Cleanup(func() { r.stop(); <-r.done })
	return r
}

func (e *outboxEnv) pending() int64 {
	e.t.Helper()
	b, err := db.New(e.pool).OutboxBacklog(context.Background())
	require.NoError(e.t, err)
	return b.Pending
}

// received takes every message waiting in the test's queue, decoded as the
// consumers decode them.
func (e *outboxEnv) received() []*message.Message {
	e.t.Helper()
	conn, err := amqp091.Dial(e.topo.URL)
	require.NoError(e.t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(e.t, err)
	var msgs []*message.Message
	for {
		d, ok, err := ch.Get(e.queue, true)
		require.NoError(e.t, err)
		if !ok {
			return msgs
		}
		msg, err := amqp.DefaultMarshaler{}.Unmarshal(d)
		require.NoError(e.t, err)
		msgs = append(msgs, msg)
	}
}

func pacer() *forwarder.Pacer { return forwarder.NewPacer(10*time.Millisecond, time.Second) }

// crashAfterConfirm stops its forwarder once RabbitMQ has confirmed the
// first batch, before the forwarder marks the batch's rows: a process killed
// between publish and ack.
type crashAfterConfirm struct {
	forwarder.Publisher
	crashed chan struct{}
}

func (c *crashAfterConfirm) Confirmed(ctx context.Context) error {
	if err := c.Publisher.Confirmed(ctx); err != nil {
		return err
	}
	close(c.crashed)
	<-ctx.Done() // the process is gone: nothing after this point runs
	return ctx.Err()
}

// A forwarder that dies after RabbitMQ took a batch and before the batch's
// rows are marked leaves them pending: the next forwarder sends them again,
// nothing is lost, and the consumers' inbox applies each event once.
func TestCrashBetweenPublishAndAckRedeliversTheBatch(t *testing.T) {
	t.Parallel()
	e := newOutboxEnv(t)
	created := e.createOrders(10)

	crashing := &crashAfterConfirm{Publisher: e.publisher(), crashed: make(chan struct{})}
	first := e.start(crashing, pacer(), 100)
	select {
	case <-crashing.crashed:
		first.stop()
	case <-time.After(20 * time.Second):
		t.Fatal("the batch was never confirmed")
	}
	select {
	case <-first.done:
		require.NoError(t, first.err)
	case <-time.After(20 * time.Second):
		t.Fatal("the forwarder did not stop")
	}
	require.EqualValues(t, 10, e.pending(), "no row marked: the batch is still pending")
	before := e.received()
	require.Len(t, before, 10, "the batch reached RabbitMQ before the crash")
	require.Zero(t, first.Forwarded())

	second := e.start(e.publisher(), pacer(), 100)
	require.Eventually(t, func() bool { return e.pending() == 0 }, 20*time.Second, 20*time.Millisecond)
	require.EqualValues(t, 10, second.Forwarded())
	again := e.received()
	require.Len(t, again, 10, "the whole batch is sent again")

	// The consumers' inbox (the process_order handler's query) applies each
	// order's event once; the copies are recognised as such.
	applied := map[uuid.UUID]int{}
	copies := 0
	for _, msg := range append(before, again...) {
		head, err := events.DecodeHead(msg)
		require.NoError(t, err)
		rows, err := db.New(e.pool).ProcessOrdersOnce(t.Context(), db.ProcessOrdersOnceParams{
			Handler: testHandler, OrderIds: []uuid.UUID{head.OrderID}, MessageIds: []string{msg.UUID}})
		require.NoError(t, err)
		require.Len(t, rows, 1)
		if rows[0].First {
			applied[head.OrderID]++
		} else {
			copies++
		}
	}
	require.Len(t, applied, len(created))
	for _, id := range created {
		require.Equal(t, 1, applied[id], "order %s applied once", id)
	}
	require.Equal(t, 10, copies)
}

// refusals counts the batches RabbitMQ did not confirm.
type refusals struct {
	forwarder.Publisher
	n atomic.Int64
}

func (r *refusals) Confirmed(ctx context.Context) error {
	err := r.Publisher.Confirmed(ctx)
	if errors.Is(err, forwarder.ErrNotConfirmed) {
		r.n.Add(1)
	}
	return err
}

// An event RabbitMQ refuses stays pending, is offered again, and is
// forwarded once the broker takes it.
func TestRefusedPublishStaysPending(t *testing.T) {
	t.Parallel()
	e := newOutboxEnv(t)
	accept := testamqp.RefusePublishes(t, e.queue)
	created := e.createOrders(1)

	pub := &refusals{Publisher: e.publisher()}
	fw := e.start(pub, pacer(), 100)
	require.Eventually(t, func() bool { return pub.n.Load() >= 2 }, 20*time.Second, 20*time.Millisecond, "refused, then offered again")
	require.EqualValues(t, 1, e.pending(), "a refused event is not marked forwarded")
	require.Zero(t, fw.Forwarded())

	accept()
	require.Eventually(t, func() bool { return e.pending() == 0 }, 20*time.Second, 20*time.Millisecond)
	msgs := e.received()
	require.Len(t, msgs, 1)
	head, err := events.DecodeHead(msgs[0])
	require.NoError(t, err)
	require.Equal(t, created[0], head.OrderID)
}

// Two forwarders (two processes: each its own pacer) on one outbox share the
// rows: each event is forwarded exactly once, both take part, none is left.
func TestTwoForwardersShareOneTable(t *testing.T) {
	t.Parallel()
	e := newOutboxEnv(t)
	const n = 600
	created := e.createOrders(n)
	a := e.start(e.publisher(), pacer(), 20)
	b := e.start(e.publisher(), pacer(), 20)
	require.Eventually(t, func() bool { return e.pending() == 0 }, 60*time.Second, 20*time.Millisecond)

	require.EqualValues(t, n, a.Forwarded()+b.Forwarded())
	require.Positive(t, a.Forwarded(), "both forwarders claimed rows")
	require.Positive(t, b.Forwarded(), "both forwarders claimed rows")
	seen := map[uuid.UUID]int{}
	for _, msg := range e.received() {
		head, err := events.DecodeHead(msg)
		require.NoError(t, err)
		seen[head.OrderID]++
	}
	require.Len(t, seen, n)
	for _, id := range created {
		require.Equal(t, 1, seen[id], "order %s forwarded once", id)
	}
	t.Logf("forwarder a: %d, b: %d events", a.Forwarded(), b.Forwarded())
}
