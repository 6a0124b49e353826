package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
)

// On quorum queues our retries still decide: a task that fails every
// attempt is parked by the poison middleware after HANDLER_MAX_RETRIES, in
// one delivery, once; the broker's delivery limit never comes into play.
func TestPoisonTaskOnQuorumQueueIsDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.topo.QueueType = messaging.QuorumQueues
	w := e.start(map[string]string{"HANDLER_MAX_RETRIES": "3"})

	// A task for an order that does not exist fails every attempt.
	_, taskID := e.publishTaskForMissingOrder("")

	dlq := e.topo.Queue(messaging.DeadLetters)
	require.Eventually(t, func() bool { return e.queueDepth(dlq) == 1 }, 20*time.Second, 20*time.Millisecond)
	// Nothing more arrives: the task was acked once parked.
	time.Sleep(time.Second)
	require.Equal(t, 1, e.queueDepth(dlq), "parked once")
	require.Equal(t, 0, e.queueDepth(e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))))
	retries := 0
	for _, r := range w.logs.Find("handler failed, retrying") {
		if r["message_id"] == taskID {
			retries++
		}
	}
	require.Equal(t, 3, retries, "HANDLER_MAX_RETRIES retries, then parked")

	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "list"}, e.getenv(), &out))
	var dl DeadLetter
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out.String())), &dl), out.String())
	require.Equal(t, taskID, dl.MessageID)
	require.Equal(t, messaging.ProcessOrderHandler, dl.Handler)
}

// A letter the broker parked (a message no consumer acked DeliveryLimit
// times more) is listed with its route and goes back to its queue on replay.
func TestLetterTheBrokerParkedIsReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.topo.QueueType = messaging.QuorumQueues
	require.NoError(t, e.topo.DeclareQueues())
	queue := e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))
	ch := e.amqpChannel()
	require.NoError(t, ch.PublishWithContext(context.Background(), "", queue, false, false, amqp091.Publishing{
		Body: []byte(`{}`), DeliveryMode: amqp091.Persistent,
		Headers: amqp091.Table{amqp.DefaultMessageUUIDHeaderKey: "crasher-1"}}))
	dlq := e.topo.Queue(messaging.DeadLetters)
	require.Eventually(t, func() bool {
		if d, ok, err := ch.Get(queue, false); err == nil && ok {
			require.NoError(t, d.Nack(false, true))
		}
		return e.queueDepth(dlq) == 1
	}, 20*time.Second, time.Millisecond)

	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"dlq", "list"}, e.getenv(), &out))
	var dl DeadLetter
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out.String())), &dl), out.String())
	require.Equal(t, "crasher-1", dl.MessageID)
	require.Equal(t, events.TopicProcessOrder, dl.Topic)
	require.Equal(t, messaging.ProcessOrderHandler, dl.Handler)
	require.Contains(t, dl.Reason, "delivery_limit")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"dlq", "replay"}, e.getenv(), &out))
	require.Contains(t, out.String(), "replayed 1 dead letters")
	require.Equal(t, 1, e.queueDepth(queue))
	require.Equal(t, 0, e.queueDepth(dlq))
}
