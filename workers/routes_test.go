package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

// Every route of the topology table is wired: a handler function is bound
// to its name, its concurrency setting is one the workers read, its queue
// exists once the workers run, a message its handler cannot decode is parked
// in the dead letters under the handler's name, and `dlq replay` sends the
// letter back to the route's queue, where the same handler takes it again.
// A new entry in messaging.Routes is covered without touching this test.
func TestEveryRouteIsWired(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg, err := config.LoadWorkers(e.getenv())
	require.NoError(t, err)

	seen := map[string]bool{}
	for _, r := range messaging.Routes {
		require.NotEmpty(t, r.Handler, "route %s names no handler", r.Topic)
		require.False(t, seen[r.Handler], "handler %s appears twice: handler names key the metrics, the inbox and the dead letters", r.Handler)
		seen[r.Handler] = true
		require.NotNil(t, handlers[r.Handler], "route %s: no handler function bound to %q in workers/handlers.go", r.Topic, r.Handler)
		n, err := concurrency(cfg, r)
		require.NoError(t, err)
		require.Positive(t, n, "route %s runs no instance", r.Handler)
		if r.Emits != "" {
			require.Contains(t, taskTopics(), r.Emits, "%s emits %s, which no task route consumes", r.Handler, r.Emits)
		}
	}

	w := e.start(map[string]string{"START_PROCESSING_CONCURRENCY": "2", "PROCESS_CONCURRENCY": "2",
		"HANDLER_MAX_RETRIES": "5", "HANDLER_RETRY_BACKOFF": "10s"})
	ch := e.amqpChannel()
	for _, q := range e.topo.Queues() {
		_, err := ch.QueueDeclarePassive(q, true, false, false, false, nil)
		require.NoError(t, err, "queue %s is declared by the workers", q)
	}

	// Through each route's exchange (the fanout for an event), so its
	// binding is tested too.
	for _, r := range messaging.Routes {
		require.NoError(t, ch.PublishWithContext(context.Background(), e.topo.Exchange(r), e.topo.RoutingKey(r), true, false,
			amqp091.Publishing{Body: []byte("{not json"), DeliveryMode: amqp091.Persistent,
				Headers: amqp091.Table{amqp.DefaultMessageUUIDHeaderKey: "wired-" + r.Handler}}))
	}
	deadLettered := func(r messaging.Route) float64 {
		return testhttp.Metric(scrape(t, w), fmt.Sprintf(`orders_dead_lettered_total{handler=%q}`, r.Handler))
	}
	for _, r := range messaging.Routes {
		require.Eventually(t, func() bool { return deadLettered(r) == 1 }, 10*time.Second, 20*time.Millisecond,
			"%s parks what it cannot decode", r.Handler)
	}
	dlq := e.topo.Queue(messaging.DeadLetters)
	require.Eventually(t, func() bool { return e.queueDepth(dlq) == len(messaging.Routes) }, 5*time.Second, 20*time.Millisecond)

	var list strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "list"}, e.getenv(), &list))
	letters := map[string]DeadLetter{}
	for line := range strings.Lines(list.String()) {
		var dl DeadLetter
		require.NoError(t, json.Unmarshal([]byte(line), &dl), line)
		letters[dl.Handler] = dl
	}
	for _, r := range messaging.Routes {
		require.Equal(t, "wired-"+r.Handler, letters[r.Handler].MessageID, "the letter of %s names its handler", r.Handler)
		require.Equal(t, r.Topic, letters[r.Handler].Topic)
	}

	var replay strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "replay"}, e.getenv(), &replay))
	require.Contains(t, replay.String(), fmt.Sprintf("replayed %d dead letters", len(messaging.Routes)))
	// Each letter went back to its route's queue only: its own handler
	// parks it a second time, no other handler sees it.
	for _, r := range messaging.Routes {
		require.Eventually(t, func() bool { return deadLettered(r) == 2 }, 10*time.Second, 20*time.Millisecond,
			"the replayed letter reaches %s again", r.Handler)
	}
	require.Eventually(t, func() bool { return e.queueDepth(dlq) == len(messaging.Routes) }, 5*time.Second, 20*time.Millisecond)
}

func taskTopics() []string {
	var topics []string
	for _, r := range messaging.Routes {
		if r.Kind == messaging.Task {
			topics = append(topics, r.Topic)
		}
	}
	return topics
}
