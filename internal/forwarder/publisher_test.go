package forwarder_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/forwarder"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
)

const topic = "new_order"

func newPipelined(t *testing.T, topo messaging.Topology) *forwarder.PipelinedPublisher {
	t.Helper()
	cfg := topo.Events("")
	conn, err := amqp.NewConnection(cfg.Connection, watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	pub := forwarder.NewPipelinedPublisher(conn, cfg, watermill.NopLogger{})
	t.Cleanup(func() { _ = pub.Close() })
	return pub
}

// Messages published without waiting arrive in order, in the wire format
// Watermill's AMQP subscriber reads (payload, UUID and metadata), once
// Confirmed says they are with the broker.
func TestPipelinedPublisherDeliversWhatItConfirms(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	sub, err := amqp.NewSubscriber(topo.Events("start_processing"), watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	require.NoError(t, sub.SubscribeInitialize(topic)) // the queue is bound before anything is published
	pub := newPipelined(t, topo)

	const n = 200
	for i := range n {
		msg := message.NewMessage(fmt.Sprintf("msg-%03d", i), fmt.Appendf(nil, `{"n":%d}`, i))
		msg.Metadata.Set("request_id", fmt.Sprintf("req-%d", i))
		require.NoError(t, pub.Publish(topic, msg))
	}
	require.NoError(t, pub.Confirmed(t.Context()))
	require.NoError(t, pub.Confirmed(t.Context()), "nothing published since: nothing to wait for")

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	for i := range n {
		select {
		case got := <-msgs:
			require.Equal(t, fmt.Sprintf("msg-%03d", i), got.UUID)
			require.JSONEq(t, fmt.Sprintf(`{"n":%d}`, i), string(got.Payload))
			require.Equal(t, fmt.Sprintf("req-%d", i), got.Metadata.Get("request_id"))
			got.Ack()
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages", i, n)
		}
	}
}

// A message the broker refuses (here a queue at its length limit that
// rejects publishes) makes Confirmed fail, so the caller keeps the batch
// to send again; the next batch starts clean.
func TestPipelinedPublisherReportsRefusedMessages(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	pub := newPipelined(t, topo)
	require.NoError(t, pub.Publish(topic, message.NewMessage("declare", []byte("{}")))) // declares the exchange
	require.NoError(t, pub.Confirmed(t.Context()), "no queue bound: dropped, but confirmed")

	conn, err := amqp091.Dial(topo.URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	full := topo.EventQueue(topic, "full")
	_, err = ch.QueueDeclare(full, false, true, false, false, amqp091.Table{"x-max-length": 1, "x-overflow": "reject-publish"})
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(full, "", topo.Name(topic), false, nil))

	for i := range 5 {
		require.NoError(t, pub.Publish(topic, message.NewMessage(fmt.Sprint(i), []byte("{}"))))
	}
	err = pub.Confirmed(t.Context())
	require.ErrorIs(t, err, forwarder.ErrNotConfirmed)
	require.Contains(t, err.Error(), "4 of 5", "the first fits the queue, the other four are refused")

	_, err = ch.QueueDelete(full, false, false, false)
	require.NoError(t, err)
	require.NoError(t, pub.Publish(topic, message.NewMessage("after", []byte("{}"))))
	require.NoError(t, pub.Confirmed(t.Context()))
}
