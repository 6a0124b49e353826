package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/outbox"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

// The worked example of CONTRIBUTING.md, "Add an event or a task": a new
// event type is one entry in the routes table and one handler function
// bound to its name. In the code base the entry goes into messaging.Routes
// and the binding into handlers (workers/handlers.go); this test adds both
// to copies, served through the same path as run, and shows that an event
// published through the outbox reaches the new handler on a queue of its
// own, and that what the handler cannot take is dead-lettered under its name
// and replayed to its queue.

// In the code base: a topic constant in internal/events and a handler name
// constant in internal/messaging.
const (
	topicOrderArchived  = "order_archived"
	archiveAuditHandler = "archive_audit"
)

// orderArchived is the new event's payload (in the code base: a type and a
// builder in internal/events, versioned like the others).
type orderArchived struct {
	OrderID uuid.UUID `json:"order_id"`
}

// The route entry, as it would read in messaging.Routes.
var archiveAuditRoute = messaging.Route{Topic: topicOrderArchived, Kind: messaging.Event, Handler: archiveAuditHandler}

// bindArchiveAudit is the handler binding, as it would read in handlers.
func bindArchiveAudit(_ messaging.Route, d handlerDeps) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		var ev orderArchived
		if err := json.Unmarshal(msg.Payload, &ev); err != nil {
			// Undecodable: parked in the dead letters at once, not retried.
			return fmt.Errorf("%w: %w", events.ErrUndecodable, err)
		}
		d.logger.InfoContext(msg.Context(), "order archived", slog.String("order_id", ev.OrderID.String()))
		return nil
	}
}

func TestAddingAnEventIsOneRouteAndOneHandler(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	routes := append(slices.Clone(messaging.Routes), archiveAuditRoute)
	bound := maps.Clone(handlers)
	bound[archiveAuditHandler] = bindArchiveAudit
	serve := func(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
		return runRoutes(ctx, args, getenv, stdout, routes, bound)
	}
	topo := e.topo
	topo.Routes = routes
	t.Cleanup(func() { _ = topo.Delete() }) // the namespace's own cleanup knows only messaging.Routes

	w := e.startRun(serve, map[string]string{"HANDLER_MAX_RETRIES": "5", "HANDLER_RETRY_BACKOFF": "10s"})
	queue := topo.Queue(archiveAuditRoute)
	require.Equal(t, e.topo.Namespace+".order_archived.archive_audit", queue, "an event's queue is <namespace>.<topic>.<handler>")
	_, err := e.amqpChannel().QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err, "the workers declare the new route's queue")

	// Published the way the API publishes: in a transaction, through the outbox.
	publish := func(payload []byte) {
		t.Helper()
		tx, err := e.pool.Begin(context.Background())
		require.NoError(t, err)
		defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after the commit
		require.NoError(t, outbox.Publish(tx, topicOrderArchived, message.NewMessage(uuid.NewString(), payload)))
		require.NoError(t, tx.Commit(context.Background()))
		require.NoError(t, outbox.Announce(context.Background(), db.New(e.pool)))
	}
	orderID := uuid.New()
	payload, err := json.Marshal(orderArchived{OrderID: orderID})
	require.NoError(t, err)
	publish(payload)
	require.Eventually(t, func() bool {
		return countLogs(w, "order archived", orderID.String()) == 1
	}, 10*time.Second, 20*time.Millisecond, "the event reaches the new handler once")

	// What the handler cannot decode is parked under its name, and `dlq
	// replay` (served with the same table) sends it back to its queue.
	deadLettered := func() float64 {
		return testhttp.Metric(scrape(t, w), `orders_dead_lettered_total{handler="archive_audit"}`)
	}
	require.Zero(t, deadLettered(), "the new handler's series exists from the start")
	publish([]byte("{not json"))
	require.Eventually(t, func() bool { return deadLettered() == 1 }, 10*time.Second, 20*time.Millisecond)

	var list strings.Builder
	require.NoError(t, serve(context.Background(), []string{"dlq", "list"}, e.getenv(), &list))
	var letter DeadLetter
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(list.String())), &letter), list.String())
	require.Equal(t, archiveAuditHandler, letter.Handler)
	require.Equal(t, topicOrderArchived, letter.Topic)

	var replay strings.Builder
	require.NoError(t, serve(context.Background(), []string{"dlq", "replay"}, e.getenv(), &replay))
	require.Contains(t, replay.String(), "replayed 1 dead letters")
	require.Eventually(t, func() bool { return deadLettered() == 2 }, 10*time.Second, 20*time.Millisecond,
		"the replayed letter reaches the new handler again")
	require.Eventually(t, func() bool { return e.queueDepth(topo.Queue(messaging.DeadLetters)) == 1 }, 5*time.Second, 20*time.Millisecond)
}
