package forwarder_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/forwarder"
	"github.com/ordersvc/orders/internal/outbox"
	"github.com/ordersvc/orders/money"
)

// noSafetyPoll is a safety poll no test waits for: whatever arrives promptly
// was woken by a notification.
const noSafetyPoll = time.Hour

// promptly bounds commit -> forwarded for a woken forwarder, generous
// because the test machine is shared and loaded.
const promptly = 500 * time.Millisecond

// listening starts a forwarder that only a notification (or its first
// claim) wakes, with its listener, and waits until the listener listens.
func (e *outboxEnv) listening() *forwarder.Pacer {
	e.t.Helper()
	p := forwarder.NewPacer(10*time.Millisecond, noSafetyPoll)
	e.start(e.publisher(), p, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		forwarder.Listen(ctx, e.dbURL, p, slog.New(slog.DiscardHandler))
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	e.listenerPID(0)
	return p
}

// listenerPID waits until a listener other than the backend not is
// listening on the test's database, and returns its backend pid.
func (e *outboxEnv) listenerPID(not int32) int32 {
	e.t.Helper()
	var pid int32
	require.Eventually(e.t, func() bool {
		err := e.pool.QueryRow(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'orders-workers outbox wake-ups'
			AND query LIKE '%LISTEN%' AND pid <> $1`, not).Scan(&pid)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond, "no listener")
	return pid
}

// deliveries consumes the test's queue.
func (e *outboxEnv) deliveries() <-chan amqp091.Delivery {
	e.t.Helper()
	conn, err := amqp091.Dial(e.topo.URL)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(e.t, err)
	d, err := ch.Consume(e.queue, "", true, false, false, false, nil)
	require.NoError(e.t, err)
	return d
}

// forwardedWithin creates an order and returns how long after its commit
// its event arrived at the test's queue.
func (e *outboxEnv) forwardedWithin(d <-chan amqp091.Delivery, wait time.Duration) time.Duration {
	e.t.Helper()
	id := e.createOrders(1)[0]
	committed := time.Now()
	return e.arrival(d, id.String(), committed, wait)
}

func (e *outboxEnv) arrival(d <-chan amqp091.Delivery, orderID string, since time.Time, wait time.Duration) time.Duration {
	e.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case got := <-d:
			msg, err := amqp.DefaultMarshaler{}.Unmarshal(got)
			require.NoError(e.t, err)
			head, err := events.DecodeHead(msg)
			require.NoError(e.t, err)
			if head.OrderID.String() == orderID {
				return time.Since(since)
			}
		case <-timeout:
			e.t.Fatalf("order %s not forwarded within %s", orderID, wait)
		}
	}
}

// The first event after a quiet spell is forwarded as soon as it commits,
// not at the next poll.
func TestFirstEventAfterAQuietSpellIsForwardedPromptly(t *testing.T) {
	t.Parallel()
	e := newOutboxEnv(t)
	d := e.deliveries()
	e.listening()
	for i := range 3 {
		time.Sleep(2 * time.Second) // quiet
		latency := e.forwardedWithin(d, 10*time.Second)
		t.Logf("event %d after 2 s of quiet: commit -> forwarded in %s", i+1, latency.Round(100*time.Microsecond))
		require.Less(t, latency, promptly)
	}
}

// When the listening connection is lost (its backend terminated, as in a
// PostgreSQL restart) the listener connects and listens again; an event
// committed while nobody listened is forwarded by the catch-up claim, and
// the next one is woken as before, neither waiting for the safety poll.
func TestEventsArriveAfterTheListenerLostItsConnection(t *testing.T) {
	t.Parallel()
	e := newOutboxEnv(t)
	d := e.deliveries()
	e.listening()
	time.Sleep(time.Second) // the first claim is over

	ctx := context.Background()
	pid := e.listenerPID(0)
	unannounced := uuid.Must(uuid.NewV7())
	event, err := events.NewOrderEvent(ctx, events.Order{ID: unannounced, UserID: e.userID, TotalPrice: money.MustParse("1.00"), Status: "PENDING"})
	require.NoError(t, err)
	tx, err := e.pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck // committed below
	require.NoError(t, outbox.Publish(tx, events.TopicNewOrder, event))
	var terminated bool
	require.NoError(t, e.pool.QueryRow(ctx, "SELECT pg_terminate_backend($1)", pid).Scan(&terminated))
	require.True(t, terminated)
	require.NoError(t, tx.Commit(ctx))
	committed := time.Now()

	again := e.listenerPID(pid)
	var listeningSince time.Time
	require.NoError(t, e.pool.QueryRow(ctx, "SELECT backend_start FROM pg_stat_activity WHERE pid = $1", again).Scan(&listeningSince))
	require.True(t, listeningSince.After(committed), "the event was committed while nobody listened")
	t.Logf("listening again (backend %d, was %d) %s after the commit", again, pid, listeningSince.Sub(committed).Round(time.Millisecond))
	caughtUp := e.arrival(d, unannounced.String(), committed, 10*time.Second)
	t.Logf("event committed during the outage forwarded %s after its commit", caughtUp.Round(time.Millisecond))
	require.Less(t, caughtUp, 5*time.Second, "by the catch-up claim, not the safety poll")

	latency := e.forwardedWithin(d, 10*time.Second)
	t.Logf("next event: commit -> forwarded in %s", latency.Round(100*time.Microsecond))
	require.Less(t, latency, promptly)
}
