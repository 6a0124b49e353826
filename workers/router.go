package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/telemetry"
)

// maxRetryWait caps the wait between a handler's retries (README:
// HANDLER_RETRY_BACKOFF).
const maxRetryWait = 30 * time.Second

// newRouter builds the one Watermill router of the workers: every handler and
// its middleware are declared here. It consumes the topology's routes, each
// with the handler function bound to its name.
func newRouter(cfg config.Workers, topo messaging.Topology, bound map[string]bindHandler, pool *pgxpool.Pool, m *workerMetrics, tracing bool, logger *slog.Logger, wlog watermill.LoggerAdapter) (*message.Router, func() error, error) {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.Handlers.Timeout}, wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("router: %w", err)
	}
	var closers []func() error // closed last to first
	closeAll := func() error {
		var errs []error
		for _, c := range slices.Backward(closers) {
			errs = append(errs, closeRecovering(c))
		}
		return errors.Join(errs...)
	}

	instances, err := instancesOf(cfg, topo.Table(), bound)
	if err != nil {
		return nil, nil, err
	}

	// The task publisher and the subscribers of routes that emit tasks
	// (start_processing) share one connection, so they lose and regain the
	// broker together: such a handler is never handed messages while its
	// tasks cannot be sent. (RabbitMQ advises separate connections for
	// publishing and consuming, because flow control on a publishing
	// connection holds back the consumer's acks too; start_processing
	// cannot progress without publishing anyway. The other consumers keep
	// connections of their own.)
	tasksCfg := topo.Tasks(cfg.Handlers.StartConcurrency)
	tasksConn, err := amqp.NewConnection(tasksCfg.Connection, wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("task publisher connection: %w", err)
	}
	closers = append(closers, tasksConn.Close)
	tasksPub, err := amqp.NewPublisherWithConnection(tasksCfg, wlog, tasksConn)
	if err != nil {
		return nil, closeAll, fmt.Errorf("task publisher: %w", err)
	}
	closers = append(closers, tasksPub.Close)

	// A message interrupted by shutdown (its context cancelled) is not
	// poisoned: the subscriber has already handed it back to the queue.
	poison, err := middleware.PoisonQueueWithFilter(deadLetters{Publisher: tasksPub, m: m, instances: instances},
		messaging.DeadLetters.Topic, func(err error) bool { return !errors.Is(err, context.Canceled) })
	if err != nil {
		return nil, closeAll, fmt.Errorf("poison queue: %w", err)
	}
	retry := retry{
		maxRetries: cfg.Handlers.MaxRetries,
		initial:    cfg.Handlers.RetryBackoff,
		maxWait:    maxRetryWait,
		// A message that cannot be decoded will not decode on a retry either.
		permanent: func(err error) bool { return errors.Is(err, events.ErrUndecodable) },
		// An event whose task the broker has not taken is fine: it waits,
		// its handler retrying on the same schedule (one attempt per 30 s at
		// most), rather than being parked in the dead letters because the
		// broker went away, or handed back and redelivered at once.
		untilDone: func(err error) bool { return errors.Is(err, errTaskNotPublished) },
		retried:   m.retries.Inc,
		logger:    logger,
		sleep:     sleepContext,
	}
	// One span per message, continuing the trace that came with it; the
	// task start_processing publishes carries the span on. With tracing
	// off, only the trace context is carried on.
	traces := telemetry.Propagate
	if tracing {
		traces = telemetry.Middleware
	}
	router.AddMiddleware(
		// Outermost: whatever still fails after the retries (or panics) is
		// parked in the dead-letter queue and acked, never dropped or looped.
		poison,
		traces,
		// Turns a panic into an error the retry and the poison queue see.
		middleware.Recoverer,
		// Exponential backoff for transient failures (database down, broker
		// away): every attempt after a failure waits, so nothing spins.
		retry.middleware,
		// Every attempt's outcome and duration.
		m.measure(instances),
		// Innermost: each attempt gets a deadline on the message context.
		middleware.Timeout(cfg.Handlers.Timeout),
	)

	// Publishing to the default exchange drops a message whose queue does
	// not exist: the dead-letter queue, which nothing consumes, is declared
	// up front.
	dlq, err := amqp.NewSubscriberWithConnection(topo.Subscriber(messaging.DeadLetters), wlog, tasksConn)
	if err != nil {
		return nil, closeAll, fmt.Errorf("dead-letter queue: %w", err)
	}
	closers = append(closers, dlq.Close)
	if err := dlq.SubscribeInitialize(messaging.DeadLetters.Topic); err != nil {
		return nil, closeAll, fmt.Errorf("declare dead-letter queue: %w", err)
	}

	deps := handlerDeps{cfg: cfg, logger: logger, tasks: tasksPub, queries: db.New(pool), m: m}
	for _, r := range topo.Table() {
		var sub *amqp.Subscriber
		if r.Emits != "" {
			sub, err = amqp.NewSubscriberWithConnection(topo.Subscriber(r), wlog, tasksConn)
		} else {
			sub, err = amqp.NewSubscriber(topo.Subscriber(r), wlog)
		}
		if err != nil {
			return nil, closeAll, fmt.Errorf("%s subscriber: %w", r.Handler, err)
		}
		closers = append(closers, sub.Close)
		// Each AMQP subscription handles one message at a time, so
		// concurrency is several instances competing on the route's queue,
		// sharing one handler function.
		handle := bound[r.Handler](r, deps)
		for _, name := range instances.of(r) {
			router.AddConsumerHandler(name, r.Topic, sub, handle)
		}
	}
	return router, closeAll, nil
}

// instances are the router's handlers: each instance name
// ("process_order_3") with the route it was built from, so that the metrics
// and the dead letters name the route without taking the name apart.
type instances struct {
	names  []string // in the order of the routes, then of the instances
	routes map[string]messaging.Route
}

// instancesOf names the handler instances of every route, as many as the
// route's concurrency setting says.
func instancesOf(cfg config.Workers, routes messaging.Table, bound map[string]bindHandler) (instances, error) {
	in := instances{routes: map[string]messaging.Route{}}
	for _, r := range routes {
		if bound[r.Handler] == nil {
			return instances{}, fmt.Errorf("route %s: no handler function bound to %q in workers/handlers.go", r.Topic, r.Handler)
		}
		n, err := concurrency(cfg, r)
		if err != nil {
			return instances{}, err
		}
		for _, name := range r.Instances(n) {
			in.names = append(in.names, name)
			in.routes[name] = r
		}
	}
	return in, nil
}

// of lists r's instance names.
func (in instances) of(r messaging.Route) []string {
	var names []string
	for _, name := range in.names {
		if in.routes[name].Handler == r.Handler {
			names = append(names, name)
		}
	}
	return names
}

// handler is the route handler name of an instance, for metric labels.
func (in instances) handler(instance string) string {
	if r, ok := in.routes[instance]; ok {
		return r.Handler
	}
	return instance
}

// concurrency is how many instances of r's handler run: the value of the
// setting the route names.
func concurrency(cfg config.Workers, r messaging.Route) (int, error) {
	switch r.Concurrency {
	case "":
		return 1, nil
	case messaging.StartProcessingConcurrency:
		return cfg.Handlers.StartConcurrency, nil
	case messaging.ProcessConcurrency:
		return cfg.Handlers.ProcessConcurrency, nil
	default:
		return 0, fmt.Errorf("route %s: unknown concurrency setting %s", r.Handler, r.Concurrency)
	}
}

// closeRecovering runs closer, turning a panic into an error: after a
// reconnect, watermill-amqp's channel pool (v3.0.2) can hold a nil channel
// that its Close dereferences. By then every message is acked or back in
// its queue; a panic would only turn a clean shutdown into a crash.
func closeRecovering(closer func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("close: recovered from a panic in the AMQP client: %v", r)
		}
	}()
	return closer()
}
