// Package messaging names the RabbitMQ topology shared by the workers, their
// operator commands and the tests.
package messaging

import (
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ordersvc/orders/internal/events"
)

// Topology names every RabbitMQ object after a namespace (AMQP_NAMESPACE),
// so several deployments, or tests, can share one broker without meeting.
//
//   - events (the bus): a durable fanout exchange per topic, "<ns>.<topic>",
//     and one durable queue per consuming handler, "<ns>.<topic>.<handler>";
//   - tasks (the task queue): a durable queue per task topic, "<ns>.<topic>",
//     on the default exchange: a separate channel from the event bus;
//   - dead letters: the durable queue "<ns>.dead_letters".
//
// Messages are persistent and every publish waits for the broker's confirm.
type Topology struct {
	Namespace string
	URL       string
}

// Consumer groups of the event bus: each has its own durable queue on the
// topic's exchange, shared by the group's instances.
const (
	StartProcessingHandler = "start_processing"
	StatusLogHandler       = "status_log"
	ProcessOrderHandler    = "process_order"
)

// Name is the exchange or queue name of topic.
func (t Topology) Name(topic string) string { return t.Namespace + "." + topic }

// EventQueue is the queue a handler group consumes an event topic from.
func (t Topology) EventQueue(topic, handler string) string { return t.Name(topic) + "." + handler }

// Events returns the config for publishing events, or for consuming them as
// handler. Publishers of events are the forwarders, each with a channel of its
// own (forwarder.PipelinedPublisher), so there is no channel pool.
func (t Topology) Events(handler string) amqp.Config {
	cfg := amqp.NewDurablePubSubConfig(t.URL, func(topic string) string { return t.EventQueue(topic, handler) })
	cfg.Exchange.GenerateName = t.Name
	// Event handlers are quick: a few messages waiting at each consumer
	// spare it the broker round trip between its ack and the next delivery.
	// Tasks keep Watermill's prefetch of 1, so a long task never holds
	// others back while another consumer is free.
	cfg.Consume.Qos.PrefetchCount = eventPrefetch
	return withConfirms(cfg, 0)
}

// eventPrefetch is how many event messages RabbitMQ hands each consumer
// before it acks.
const eventPrefetch = 4

// Tasks returns the config for the task queue and the dead-letter queue.
func (t Topology) Tasks(channels int) amqp.Config {
	cfg := amqp.NewDurableQueueConfig(t.URL)
	cfg.Queue.GenerateName = t.Name
	cfg.Publish.GenerateRoutingKey = t.Name
	return withConfirms(cfg, channels)
}

// QueueForHandler is where a dead letter goes back to on replay: the queue of
// the handler group that gave up on it.
func (t Topology) QueueForHandler(topic, handler string) string {
	if topic == events.TopicProcessOrder {
		return t.Name(topic)
	}
	return t.EventQueue(topic, handler)
}

// Queues lists every queue of the namespace.
func (t Topology) Queues() []string {
	return []string{
		t.EventQueue(events.TopicNewOrder, StartProcessingHandler),
		t.EventQueue(events.TopicOrderStatusChanged, StatusLogHandler),
		t.Name(events.TopicProcessOrder),
		t.Name(events.TopicDeadLetters),
	}
}

// Exchanges lists every exchange of the namespace.
func (t Topology) Exchanges() []string {
	return []string{t.Name(events.TopicNewOrder), t.Name(events.TopicOrderStatusChanged)}
}

func withConfirms(cfg amqp.Config, channels int) amqp.Config {
	cfg.Publish.ConfirmDelivery = true
	// Pooled channels let several publishes wait for their confirms at once;
	// without a pool every publish would also open and close a channel.
	cfg.Publish.ChannelPoolSize = channels
	return cfg
}

// Delete removes every queue and exchange of the namespace, messages
// included: for tests and benchmarks that made a namespace of their own.
func (t Topology) Delete() error {
	conn, err := amqp091.Dial(t.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	// A failed delete closes its channel, so each gets its own.
	for _, q := range t.Queues() {
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
			_ = ch.Close()
		}
	}
	for _, x := range t.Exchanges() {
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(x, false, false)
			_ = ch.Close()
		}
	}
	return nil
}
