package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
)

// A dead letter parked by an earlier version names only the handler
// instance ("process_order_3"): the dlq commands still find its route from
// its topic, and replay it to that route's queue.
func TestDeadLetterWithoutRouteHeaderIsReplayedByItsTopic(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ch := e.amqpChannel()
	dlq := e.topo.Queue(messaging.DeadLetters)
	task := e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))
	for _, q := range []string{dlq, task} {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
	}
	require.NoError(t, ch.PublishWithContext(context.Background(), "", dlq, true, false, amqp091.Publishing{
		Body: []byte(`{"order_id":"x"}`), DeliveryMode: amqp091.Persistent,
		Headers: amqp091.Table{
			amqp.DefaultMessageUUIDHeaderKey: "old-1",
			middleware.PoisonedTopicKey:      events.TopicProcessOrder,
			middleware.PoisonedHandlerKey:    "process_order_3",
			middleware.ReasonForPoisonedKey:  "order does not exist",
		}}))

	var list strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "list"}, e.getenv(), &list))
	var dl DeadLetter
	require.NoError(t, json.Unmarshal([]byte(list.String()), &dl), list.String())
	require.Equal(t, messaging.ProcessOrderHandler, dl.Handler)

	var replay strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "replay"}, e.getenv(), &replay))
	require.Contains(t, replay.String(), "replayed 1 dead letters")
	require.Equal(t, 1, e.queueDepth(task), "back in the process_order queue")
	require.Zero(t, e.queueDepth(dlq))
}
