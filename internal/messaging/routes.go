package messaging

import (
	"fmt"

	"github.com/ordersvc/orders/internal/events"
)

// Routes is the messaging topology, declared once: every topic a workers
// process consumes, how it travels and which handler takes it. The router
// builds its subscribers and handlers from it, the dead-letter commands find
// a letter's queue in it, the metrics label their series with its handler
// names, and the tests and the benchmark read their queue names from it.
//
// Adding an event or a task is one entry here and one handler function
// bound to its Handler name in workers/handlers.go; TestEveryRouteIsWired
// (workers) checks that the two meet, that the queues exist once the workers
// run and that a dead letter of each route goes back to its queue on replay;
// CONTRIBUTING.md walks through an example (workers/new_event_test.go).
var Routes = Table{
	{Topic: events.TopicNewOrder, Kind: Event, Handler: StartProcessingHandler,
		Concurrency: StartProcessingConcurrency, Emits: events.TopicProcessOrder},
	{Topic: events.TopicOrderStatusChanged, Kind: Event, Handler: StatusLogHandler},
	{Topic: events.TopicProcessOrder, Kind: Task, Handler: ProcessOrderHandler,
		Concurrency: ProcessConcurrency},
}

// DeadLetters is the queue where every route's handler parks what it gives
// up on (after its retries, or at once when the message cannot be decoded).
// Nothing consumes it: `workers dlq replay` sends each letter back to the
// queue of the route that failed it.
var DeadLetters = Route{Topic: events.TopicDeadLetters, Kind: Task}

// Handler names: the consumer groups of Routes. A name is the label of the
// handler metrics, the key of the handler's inbox rows and the handler a dead
// letter names, so renaming one is an operator-visible change.
const (
	StartProcessingHandler = "start_processing"
	StatusLogHandler       = "status_log"
	ProcessOrderHandler    = "process_order"
)

// Kind is how a route's messages travel.
type Kind int

const (
	// Event is published to the durable fanout exchange "<ns>.<topic>"; each
	// handler consuming the topic has a durable queue of its own,
	// "<ns>.<topic>.<handler>", bound to it.
	Event Kind = iota + 1
	// Task is published on the default exchange straight to the durable queue
	// "<ns>.<topic>", the task queue: a separate channel from the event bus.
	Task
)

// Setting names the configuration variable that gives a route's
// concurrency.
type Setting string

// The concurrency settings of Routes (see the README's configuration table).
const (
	StartProcessingConcurrency Setting = "START_PROCESSING_CONCURRENCY"
	ProcessConcurrency         Setting = "PROCESS_CONCURRENCY"
)

// Route is one row of the topology: a topic and the handler consuming it.
type Route struct {
	Topic string
	Kind  Kind
	// Handler is the consumer group: all its instances share the route's
	// queue. Empty for DeadLetters, which nothing consumes.
	Handler string
	// Concurrency is the setting giving how many instances of the handler
	// compete on the queue (each AMQP subscription handles one message at a
	// time); empty for a single instance.
	Concurrency Setting
	// Emits is the task topic the handler publishes to, if any. Its
	// subscriber shares the task publisher's connection, so it is handed no
	// message while its tasks cannot be sent.
	Emits string
}

// Instances names the router handlers of the route, one per concurrent
// subscriber: "process_order_0", "process_order_1", ... for a route with a
// concurrency setting, the handler name alone otherwise. The names appear in
// traces and in the poison queue's handler header.
func (r Route) Instances(n int) []string {
	if r.Concurrency == "" {
		return []string{r.Handler}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s_%d", r.Handler, i)
	}
	return names
}

// Table is a list of routes: Routes, or in a test an extended copy of it
// (Topology.Routes).
type Table []Route

// Lookup finds the route of a handler (the name a dead letter carries).
func Lookup(handler string) (Route, bool) { return Routes.Lookup(handler) }

// RouteOf is Routes.RouteOf.
func RouteOf(handler string) Route { return Routes.RouteOf(handler) }

// Consumers is Routes.Consumers.
func Consumers(topic string) []Route { return Routes.Consumers(topic) }

// Lookup finds the route of a handler in the table.
func (routes Table) Lookup(handler string) (Route, bool) {
	for _, r := range routes {
		if r.Handler == handler {
			return r, true
		}
	}
	return Route{}, false
}

// RouteOf is the route of handler, one of the handler name constants; it
// panics when the table has none, a mistake no input can cause.
func (routes Table) RouteOf(handler string) Route {
	r, ok := routes.Lookup(handler)
	if !ok {
		panic(fmt.Sprintf("messaging: no route for handler %q", handler))
	}
	return r
}

// Consumers lists the routes of topic: where a message of it goes.
func (routes Table) Consumers(topic string) []Route {
	var out []Route
	for _, r := range routes {
		if r.Topic == topic {
			out = append(out, r)
		}
	}
	return out
}
