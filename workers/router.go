package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// newRouter builds the one Watermill router of the workers: every handler and
// its middleware are declared here.
func newRouter(cfg config.Config, topo messaging.Topology, pool *pgxpool.Pool, m *workerMetrics, logger *slog.Logger, wlog watermill.LoggerAdapter) (*message.Router, func() error, error) {
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.HandlerTimeout}, wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("router: %w", err)
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}

	tasksPub, err := amqp.NewPublisher(topo.Tasks(cfg.StartConcurrency), wlog)
	if err != nil {
		return nil, nil, fmt.Errorf("task publisher: %w", err)
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
	retry := middleware.Retry{
		MaxRetries:      cfg.HandlerMaxRetries,
		InitialInterval: cfg.HandlerRetryBackoff,
		Multiplier:      2,
		MaxInterval:     30 * time.Second,
		Logger:          wlog,
		// The timeout middleware below cancels the message context when an
		// attempt ends; each retry needs a live one.
		ResetContextOnRetry: true,
		OnRetryHook:         func(int, time.Duration) { m.retries.Inc() },
		// A message that cannot be decoded will not decode on a retry either.
		ShouldRetry: func(p middleware.RetryParams) bool { return !errors.Is(p.Err, events.ErrUndecodable) },
	}
	router.AddMiddleware(
		// Outermost: whatever still fails after the retries (or panics) is
		// parked in the dead-letter queue and acked, never dropped or looped.
		poison,
		// One span per message, continuing the trace that came with it;
		// messages the handler produces carry the span on.
		telemetry.Middleware,
		// Turns a panic into an error the retry and the poison queue see.
		middleware.Recoverer,
		// Exponential backoff for transient failures (database down, ...).
		retry.Middleware,
		// Every attempt's outcome and duration.
		m.measure,
		// Innermost: each attempt gets a deadline on the message context.
		middleware.Timeout(cfg.HandlerTimeout),
	)

	newEventSub := func(handler string) (*amqp.Subscriber, error) {
		sub, err := amqp.NewSubscriber(topo.Events(handler), wlog)
		if err == nil {
			closers = append(closers, sub.Close)
		}
		return sub, err
	}
	startSub, err := newEventSub(messaging.StartProcessingHandler)
	if err != nil {
		return nil, closeAll, fmt.Errorf("new_order subscriber: %w", err)
	}
	statusSub, err := newEventSub(messaging.StatusLogHandler)
	if err != nil {
		return nil, closeAll, fmt.Errorf("order_status_changed subscriber: %w", err)
	}
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
	for i := range cfg.StartConcurrency {
		router.AddHandler(fmt.Sprintf("%s_%d", messaging.StartProcessingHandler, i), events.TopicNewOrder, startSub,
			events.TopicProcessOrder, tasksPub, startProcessing)
	}
	router.AddConsumerHandler(messaging.StatusLogHandler, events.TopicOrderStatusChanged, statusSub, logStatusChange(logger))
	marks := &groupCommit{queries: db.New(pool), timeout: cfg.HandlerTimeout,
		written: func(n int) { m.taskGroup.Observe(float64(n)) }}
	worker := &processOrder{marks: marks, duration: cfg.ProcessOrderDuration, logger: logger,
		latency: func(d time.Duration) { m.processing.Observe(d.Seconds()) }}
	for i := range cfg.ProcessConcurrency {
		router.AddConsumerHandler(fmt.Sprintf("%s_%d", messaging.ProcessOrderHandler, i), events.TopicProcessOrder, tasksSub, worker.handle)
	}
	return router, closeAll, nil
}
