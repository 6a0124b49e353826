package main

import (
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"

	"github.com/ordersvc/orders/internal/events"
)

// topology names every RabbitMQ object after a namespace (AMQP_NAMESPACE),
// so several deployments, or tests, can share one broker without meeting.
//
//   - events (the bus): a durable fanout exchange per topic, "<ns>.<topic>",
//     and one durable queue per consuming handler, "<ns>.<topic>.<handler>";
//   - tasks (the task queue): a durable queue per task topic, "<ns>.<topic>",
//     on the default exchange: a separate channel from the event bus;
//   - dead letters: the durable queue "<ns>.dead_letters".
//
// Messages are persistent and every publish waits for the broker's confirm.
type topology struct {
	namespace string
	url       string
}

func (t topology) name(topic string) string { return t.namespace + "." + topic }

// eventQueue is the queue a handler consumes an event topic from.
func (t topology) eventQueue(topic, handler string) string { return t.name(topic) + "." + handler }

// events returns the config for publishing events, or for consuming them as handler.
func (t topology) events(handler string, channels int) amqp.Config {
	cfg := amqp.NewDurablePubSubConfig(t.url, func(topic string) string { return t.eventQueue(topic, handler) })
	cfg.Exchange.GenerateName = t.name
	return withConfirms(cfg, channels)
}

// tasks returns the config for the task queue and the dead-letter queue.
func (t topology) tasks(channels int) amqp.Config {
	cfg := amqp.NewDurableQueueConfig(t.url)
	cfg.Queue.GenerateName = t.name
	cfg.Publish.GenerateRoutingKey = t.name
	return withConfirms(cfg, channels)
}

// queueForHandler is where a dead letter goes back to on replay: the queue of
// the handler that gave up on it.
func (t topology) queueForHandler(topic, handler string) string {
	if topic == events.TopicProcessOrder {
		return t.name(topic)
	}
	return t.eventQueue(topic, handler)
}

func withConfirms(cfg amqp.Config, channels int) amqp.Config {
	cfg.Publish.ConfirmDelivery = true
	// Pooled channels let several publishes wait for their confirms at once;
	// without a pool every publish would also open and close a channel.
	cfg.Publish.ChannelPoolSize = channels
	return cfg
}
