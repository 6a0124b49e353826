package messaging_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
)

// A namespace whose queues are classic cannot be taken over by quorum
// workers, nor the other way round: the start fails naming the queue and
// the migration, and changes nothing on the broker.
func TestDeclareQueuesRefusesAnotherQueueType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ existing, wanted string }{
		{messaging.ClassicQueues, messaging.QuorumQueues},
		{messaging.QuorumQueues, messaging.ClassicQueues},
	} {
		t.Run(tc.existing+" to "+tc.wanted, func(t *testing.T) {
			t.Parallel()
			topo := testamqp.Namespace(t)
			topo.QueueType = tc.existing
			require.NoError(t, topo.DeclareQueues())
			require.NoError(t, topo.DeclareQueues(), "declaring the same queues again is fine")

			topo.QueueType = tc.wanted
			err := topo.DeclareQueues()
			require.ErrorIs(t, err, messaging.ErrQueueMismatch)
			require.ErrorContains(t, err, fmt.Sprintf("queue %q exists with other arguments than a %s queue", topo.Queues()[0], tc.wanted))
			require.ErrorContains(t, err, "new AMQP_NAMESPACE")
		})
	}
}

// The queue an old release declared without arguments is a classic queue:
// the default type accepts it, so upgrading changes nothing.
func TestClassicAcceptsQueuesDeclaredWithoutArguments(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	conn, err := topo.Dial()
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	require.NoError(t, err)
	for _, q := range topo.Queues() {
		_, err := ch.QueueDeclare(q, true, false, false, false, nil)
		require.NoError(t, err)
	}
	require.NoError(t, topo.DeclareQueues())
}

// A message no consumer acks (a workers process that dies holding it, over
// and over) goes round a quorum queue DeliveryLimit times at most, then the
// broker parks it in the dead-letter queue, once, with the queue it came
// from.
func TestQuorumDeliveryLimitDeadLettersOnce(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	topo.QueueType = messaging.QuorumQueues
	require.NoError(t, topo.DeclareQueues())
	conn, err := topo.Dial()
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	require.NoError(t, err)
	task := messaging.RouteOf(messaging.ProcessOrderHandler)
	require.NoError(t, ch.Publish("", topo.Queue(task), false, false, amqp091.Publishing{
		DeliveryMode: amqp091.Persistent, MessageId: "crasher", Body: []byte(`{}`)}))

	deliveries := 0
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		d, ok, err := ch.Get(topo.Queue(task), false)
		require.NoError(t, err)
		if !ok {
			if testamqp.QueueDepth(t, topo.Queue(messaging.DeadLetters)) == 1 {
				break
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		deliveries++
		require.NoError(t, d.Nack(false, true))
	}
	require.Equal(t, messaging.DeliveryLimit+1, deliveries, "the first delivery and DeliveryLimit redeliveries")
	require.Equal(t, 0, testamqp.QueueDepth(t, topo.Queue(task)))
	d, ok, err := ch.Get(topo.Queue(messaging.DeadLetters), true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "crasher", d.MessageId)
	require.Equal(t, topo.Queue(task), d.Headers["x-first-death-queue"])
	require.Equal(t, "delivery_limit", d.Headers["x-first-death-reason"])
	require.Equal(t, 0, testamqp.QueueDepth(t, topo.Queue(messaging.DeadLetters)), "parked once")
}

func TestParseBrokers(t *testing.T) {
	t.Parallel()
	uris, err := messaging.ParseBrokers(" amqp://u:hunter2@h1:5672/v , amqp://u:hunter2@h2:5673/v")
	require.NoError(t, err)
	require.Len(t, uris, 2)
	require.Equal(t, "h2", uris[1].Host)
	require.Equal(t, 5673, uris[1].Port)

	for _, bad := range []string{
		"amqp://u:hunter2@h1/,",
		"amqp://u:hunter2@h1/,,amqp://u:hunter2@h2/",
		"amqp://u:hunter2@h1/,h2:5672",
		"amqp://u:hunter2@h1/,amqp://u:other@h2/",
		"amqp://u:hunter2@h1/v,amqp://u:hunter2@h2/w",
		"amqp://u:hunter2@h1/,amqps://u:hunter2@h2/",
		"http://u:hunter2@h1/",
	} {
		_, err := messaging.ParseBrokers(bad)
		require.Error(t, err, bad)
		require.NotContains(t, err.Error(), "hunter2", "an error must not leak a password")
		require.NotContains(t, err.Error(), "other")
	}
}

// With several brokers, a connection goes to the first that answers, and a
// publish through it is confirmed.
func TestSeveralBrokersTriedInTurn(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	// A port nothing listens on: the first broker is down.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := l.Addr().String()
	require.NoError(t, l.Close())
	creds := strings.TrimPrefix(topo.URL, "amqp://")
	creds = creds[:strings.Index(creds, "@")+1]
	topo.URL = "amqp://" + creds + down + "/," + topo.URL

	pub, err := amqp.NewPublisher(topo.Tasks(1), watermill.NopLogger{})
	require.NoError(t, err)
	defer func() { _ = pub.Close() }()
	sub, err := amqp.NewSubscriber(topo.Subscriber(messaging.DeadLetters), watermill.NopLogger{})
	require.NoError(t, err)
	defer func() { _ = sub.Close() }()
	require.NoError(t, sub.SubscribeInitialize(messaging.DeadLetters.Topic))
	require.NoError(t, pub.Publish(messaging.DeadLetters.Topic, message.NewMessage("m1", []byte("x"))))
	require.Equal(t, 1, testamqp.QueueDepth(t, topo.Queue(messaging.DeadLetters)))

	topo.URL = "amqp://" + creds + down + "/"
	_, err = topo.Dial()
	require.Error(t, err, "no broker answers")
}

// A message a quorum queue redelivers carries x-delivery-count, an integer
// header: the subscriber still hands it to its handler.
func TestRedeliveredQuorumMessageIsConsumed(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	topo.QueueType = messaging.QuorumQueues
	require.NoError(t, topo.DeclareQueues())
	task := messaging.RouteOf(messaging.ProcessOrderHandler)
	conn, err := topo.Dial()
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Publish("", topo.Queue(task), false, false, amqp091.Publishing{
		DeliveryMode: amqp091.Persistent, Headers: amqp091.Table{amqp.DefaultMessageUUIDHeaderKey: "m1"}, Body: []byte(`{}`)}))
	require.Eventually(t, func() bool {
		d, ok, err := ch.Get(topo.Queue(task), false)
		return err == nil && ok && d.Nack(false, true) == nil
	}, 10*time.Second, 10*time.Millisecond)

	sub, err := amqp.NewSubscriber(topo.Subscriber(task), watermill.NopLogger{})
	require.NoError(t, err)
	defer func() { _ = sub.Close() }()
	msgs, err := sub.Subscribe(t.Context(), task.Topic)
	require.NoError(t, err)
	select {
	case msg := <-msgs:
		require.Equal(t, "m1", msg.UUID)
		require.Equal(t, "1", msg.Metadata.Get("x-delivery-count"))
		msg.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the redelivered message never reached the subscriber")
	}
}
