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
// its middleware are declared here.
func newRouter(cfg config.Workers, topo messaging.Topology, pool *pgxpool.Pool, m *workerMetrics, logger *slog.Logger, wlog watermill.LoggerAdapter) (*message.Router, func() error, error) {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.Handlers.Timeout}, wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("router: %w", err)
	}
	var closers []func() error // closed last to first
	closeAll := func() error {
		var errs []error
		for _, c := range slices.Backward(closers) {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}

	// The task publisher and the new_order subscriber share one connection,
	// so they lose and regain the broker together: start_processing is
	// never handed events while its tasks cannot be sent. (RabbitMQ advises
	// separate connections for publishing and consuming, because flow
	// control on a publishing connection holds back the consumer's acks
	// too; start_processing cannot progress without publishing anyway. The
	// other consumers keep connections of their own.)
	tasksCfg := topo.Tasks(cfg.Handlers.StartConcurrency)
	startConn, err := amqp.NewConnection(tasksCfg.Connection, wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("task publisher connection: %w", err)
	}
	closers = append(closers, startConn.Close)
	tasksPub, err := amqp.NewPublisherWithConnection(tasksCfg, wlog, startConn)
	if err != nil {
		return nil, closeAll, fmt.Errorf("task publisher: %w", err)
	}
	closers = append(closers, tasksPub.Close)

	// A message interrupted by shutdown (its context cancelled) is not
	// poisoned: the subscriber has already handed it back to the queue.
	poison, err := middleware.PoisonQueueWithFilter(deadLetters{Publisher: tasksPub, m: m}, events.TopicDeadLetters, func(err error) bool {
		return !errors.Is(err, context.Canceled)
	})
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
	router.AddMiddleware(
		// Outermost: whatever still fails after the retries (or panics) is
		// parked in the dead-letter queue and acked, never dropped or looped.
		poison,
		// One span per message, continuing the trace that came with it; the
		// task start_processing publishes carries the span on.
		telemetry.Middleware,
		// Turns a panic into an error the retry and the poison queue see.
		middleware.Recoverer,
		// Exponential backoff for transient failures (database down, broker
		// away): every attempt after a failure waits, so nothing spins.
		retry.middleware,
		// Every attempt's outcome and duration.
		m.measure,
		// Innermost: each attempt gets a deadline on the message context.
		middleware.Timeout(cfg.Handlers.Timeout),
	)

	startSub, err := amqp.NewSubscriberWithConnection(topo.Events(messaging.StartProcessingHandler), wlog, startConn)
	if err != nil {
		return nil, closeAll, fmt.Errorf("new_order subscriber: %w", err)
	}
	closers = append(closers, startSub.Close)
	statusSub, err := amqp.NewSubscriber(topo.Events(messaging.StatusLogHandler), wlog)
	if err != nil {
		return nil, closeAll, fmt.Errorf("order_status_changed subscriber: %w", err)
	}
	closers = append(closers, statusSub.Close)
	tasksSub, err := amqp.NewSubscriber(topo.Tasks(0), wlog)
	if err != nil {
		return nil, closeAll, fmt.Errorf("task subscriber: %w", err)
	}
	closers = append(closers, tasksSub.Close)
	// Publishing to the default exchange drops a message whose queue does
	// not exist: the dead-letter queue, which nothing consumes, is declared
	// up front.
	if err := tasksSub.SubscribeInitialize(events.TopicDeadLetters); err != nil {
		return nil, closeAll, fmt.Errorf("declare dead-letter queue: %w", err)
	}

	// Each AMQP subscription handles one message at a time, so concurrency
	// is several subscriptions competing on the same queue. A start_processing
	// handler spends its time waiting for the task's confirm; it takes
	// several to keep up with the forwarders, which confirm whole batches.
	start := startProcessing{tasks: tasksPub}
	for i := range cfg.Handlers.StartConcurrency {
		router.AddConsumerHandler(fmt.Sprintf("%s_%d", messaging.StartProcessingHandler, i), events.TopicNewOrder, startSub, start.handle)
	}
	router.AddConsumerHandler(messaging.StatusLogHandler, events.TopicOrderStatusChanged, statusSub, logStatusChange(logger))
	marks := &groupCommit{queries: db.New(pool), timeout: cfg.Handlers.Timeout,
		written: func(n int) { m.taskGroup.Observe(float64(n)) }}
	worker := &processOrder{marks: marks, duration: cfg.Handlers.ProcessOrderDuration, logger: logger,
		latency: func(d time.Duration) { m.processing.Observe(d.Seconds()) }}
	for i := range cfg.Handlers.ProcessConcurrency {
		router.AddConsumerHandler(fmt.Sprintf("%s_%d", messaging.ProcessOrderHandler, i), events.TopicProcessOrder, tasksSub, worker.handle)
	}
	return router, closeAll, nil
}
