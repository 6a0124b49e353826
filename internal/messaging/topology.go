// Package messaging holds the RabbitMQ topology shared by the workers, their
// operator commands, the benchmark and the tests: the table of routes
// (routes.go) and the names and configurations derived from it.
package messaging

import (
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// Topology names every RabbitMQ object of Routes after a namespace
// (AMQP_NAMESPACE), so several deployments, or tests, can share one broker
// without meeting:
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
	// URL is AMQP_URL: one broker, or several (comma-separated) tried in
	// turn; see ParseBrokers.
	URL string
	// QueueType is AMQP_QUEUE_TYPE, the type of every queue: QuorumQueues
	// or ClassicQueues (the default when empty).
	QueueType string
	// Routes are the routes the namespace serves; nil is the package's
	// Routes. A test extends a copy to run a route of its own.
	Routes Table
}

// Table is the topology's routes: t.Routes, or the package's Routes.
func (t Topology) Table() Table {
	if t.Routes == nil {
		return Routes
	}
	return t.Routes
}

// The queue types (AMQP_QUEUE_TYPE).
const (
	// ClassicQueues live on one node: fast, and lost with it (RabbitMQ 4
	// removed classic mirroring).
	ClassicQueues = "classic"
	// QuorumQueues are replicated on a majority of the cluster's nodes
	// (Raft): they survive the loss of a minority.
	QuorumQueues = "quorum"
)

// DeliveryLimit is the quorum queues' delivery limit (x-delivery-limit): how
// many times the broker hands a message out without an ack before it
// dead-letters it to the dead-letter queue. It is a backstop, not the retry
// policy: the workers retry a failed message within one delivery
// (HANDLER_MAX_RETRIES) and park it in the dead-letter queue themselves, so
// a delivery ends without their ack or reject only when a workers process
// dies or loses its connection, or shuts down, holding it. Twenty such
// endings (RabbitMQ 4's own default) are enough for restarts and
// failovers, and stop a message that crashes every process taking it from
// going round forever.
const DeliveryLimit = 20

// DeadLetterHandlerKey is the metadata (AMQP header) naming the route
// handler that parked a dead letter: the poison queue's own handler header
// names the instance ("process_order_3").
const DeadLetterHandlerKey = "dead_letter_handler"

// Name is the exchange or queue name of topic.
func (t Topology) Name(topic string) string { return t.Namespace + "." + topic }

// EventQueue is the queue a handler group consumes an event topic from.
func (t Topology) EventQueue(topic, handler string) string { return t.Name(topic) + "." + handler }

// Queue is the queue r's handler consumes.
func (t Topology) Queue(r Route) string {
	if r.Kind == Event {
		return t.EventQueue(r.Topic, r.Handler)
	}
	return t.Name(r.Topic)
}

// Exchange is where r's messages are published: the topic's fanout exchange
// for an event, the default exchange ("") for a task.
func (t Topology) Exchange(r Route) string {
	if r.Kind == Event {
		return t.Name(r.Topic)
	}
	return ""
}

// RoutingKey is the key r's messages are published with: none on a fanout
// exchange, the queue on the default exchange.
func (t Topology) RoutingKey(r Route) string {
	if r.Kind == Event {
		return ""
	}
	return t.Queue(r)
}

// QueueArguments are the arguments every declaration of r's queue passes
// (the workers' subscribers through Subscriber, CheckQueues, the dead-letter
// commands): the broker refuses to declare a queue again with other
// arguments. Classic queues need none. A route's quorum queue has the
// delivery limit, and dead-letters what exceeds it to the dead-letter queue
// at least once (the broker keeps the message until the dead-letter queue
// has confirmed it, which needs overflow reject-publish). The dead-letter
// queue has no limit: `workers dlq list` hands every letter back unacked.
func (t Topology) QueueArguments(r Route) amqp091.Table {
	if t.QueueType != QuorumQueues {
		return nil
	}
	args := amqp091.Table{"x-queue-type": QuorumQueues}
	if r == DeadLetters {
		return args
	}
	args["x-delivery-limit"] = DeliveryLimit
	args["x-dead-letter-exchange"] = ""
	args["x-dead-letter-routing-key"] = t.Queue(DeadLetters)
	args["x-dead-letter-strategy"] = "at-least-once"
	args["x-overflow"] = "reject-publish"
	return args
}

// Subscriber returns the config for consuming r as its handler, or, for
// DeadLetters, for declaring its queue.
func (t Topology) Subscriber(r Route) amqp.Config {
	cfg := t.Tasks(0)
	if r.Kind == Event {
		cfg = t.Events(r.Handler)
	}
	cfg.Queue.Arguments = t.QueueArguments(r)
	return cfg
}

// Events returns the config for publishing events, or for consuming them as
// handler. Publishers of events are the forwarders, each with a channel of its
// own (forwarder.PipelinedPublisher), so there is no channel pool.
func (t Topology) Events(handler string) amqp.Config {
	cfg := amqp.NewDurablePubSubConfig("", func(topic string) string { return t.EventQueue(topic, handler) })
	cfg.Exchange.GenerateName = t.Name
	// Event handlers are quick: a few messages waiting at each consumer
	// spare it the broker round trip between its ack and the next delivery.
	// Tasks keep Watermill's prefetch of 1, so a long task never holds
	// others back while another consumer is free.
	cfg.Consume.Qos.PrefetchCount = eventPrefetch
	return t.withConfirms(cfg, 0)
}

// eventPrefetch is how many event messages RabbitMQ hands each consumer
// before it acks.
const eventPrefetch = 4

// Tasks returns the config for the task queue and the dead-letter queue.
func (t Topology) Tasks(channels int) amqp.Config {
	cfg := amqp.NewDurableQueueConfig("")
	cfg.Queue.GenerateName = t.Name
	cfg.Publish.GenerateRoutingKey = t.Name
	return t.withConfirms(cfg, channels)
}

// Queues lists every queue of the namespace: the routes' and the dead letters'.
func (t Topology) Queues() []string {
	routes := t.Table()
	queues := make([]string, 0, len(routes)+1)
	for _, r := range routes {
		queues = append(queues, t.Queue(r))
	}
	return append(queues, t.Queue(DeadLetters))
}

// Exchanges lists every exchange of the namespace, each once.
func (t Topology) Exchanges() []string {
	var exchanges []string
	seen := map[string]bool{}
	for _, r := range t.Table() {
		if x := t.Exchange(r); x != "" && !seen[x] {
			seen[x] = true
			exchanges = append(exchanges, x)
		}
	}
	return exchanges
}

func (t Topology) withConfirms(cfg amqp.Config, channels int) amqp.Config {
	cfg.Connection = t.connection()
	cfg.Marshaler = marshaler{}
	cfg.Publish.ConfirmDelivery = true
	// Pooled channels let several publishes wait for their confirms at once;
	// without a pool every publish would also open and close a channel.
	cfg.Publish.ChannelPoolSize = channels
	return cfg
}

// Delete removes every queue and exchange of the namespace, messages
// included: for tests and benchmarks that made a namespace of their own.
func (t Topology) Delete() error {
	return t.remove(t.Queues(), t.Exchanges())
}

// DeleteQueues removes the named queues, messages included: for tests that
// declared queues of their own in a namespace.
func (t Topology) DeleteQueues(queues ...string) error {
	return t.remove(queues, nil)
}

func (t Topology) remove(queues, exchanges []string) error {
	conn, err := t.Dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	// A failed delete closes its channel, so each gets its own.
	for _, q := range queues {
		if ch, err := conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(q, false, false, false)
			_ = ch.Close()
		}
	}
	for _, x := range exchanges {
		if ch, err := conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(x, false, false)
			_ = ch.Close()
		}
	}
	return nil
}
