package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/telemetry"
)

// handlerDeps is what the handler functions are built from.
type handlerDeps struct {
	cfg     config.Workers
	logger  *slog.Logger
	tasks   message.Publisher // confirmed publishes to the task queue
	queries *db.Queries
	m       *workerMetrics
}

// bindHandler builds the handler function of a route, once per route; the
// route's instances share it.
type bindHandler = func(messaging.Route, handlerDeps) message.NoPublishHandlerFunc

// handlers binds the Handler name of each route of messaging.Routes to its
// handler function. A new route is an entry in messaging.Routes and an entry
// here (CONTRIBUTING.md, "Add an event or a task").
var handlers = map[string]bindHandler{
	messaging.StartProcessingHandler: func(r messaging.Route, d handlerDeps) message.NoPublishHandlerFunc {
		return startProcessing{tasks: d.tasks, topic: r.Emits}.handle
	},
	messaging.StatusLogHandler: func(_ messaging.Route, d handlerDeps) message.NoPublishHandlerFunc {
		return logStatusChange(d.logger)
	},
	messaging.ProcessOrderHandler: func(r messaging.Route, d handlerDeps) message.NoPublishHandlerFunc {
		marks := &groupCommit{queries: d.queries, timeout: d.cfg.Handlers.Timeout, handler: r.Handler,
			written: func(n int) { d.m.taskGroup.Observe(float64(n)) }}
		worker := &processOrder{marks: marks, duration: d.cfg.Handlers.ProcessOrderDuration, logger: d.logger,
			latency: func(t time.Duration) { d.m.processing.Observe(t.Seconds()) }}
		return worker.handle
	},
}

// startProcessing consumes new_order events and starts the background work
// by publishing a process_order task: the event bus and the task queue are
// separate channels. A redelivered event yields the same task id, which the
// task handler's inbox recognises.
//
// It publishes the task itself rather than returning it to the router, so
// that a failed publish is a failed attempt like any other: retried with
// backoff, and counted. Its subscriber shares the task publisher's
// connection, so it is handed no event while tasks cannot be sent.
type startProcessing struct {
	tasks message.Publisher
	topic string // of the tasks: the route's Emits
}

// errTaskNotPublished marks an event whose task the broker did not take. It
// says nothing about the event: the event is retried until the broker takes
// its task, never dead-lettered.
var errTaskNotPublished = errors.New("process_order task not published")

func (h startProcessing) handle(msg *message.Message) error {
	event, err := events.DecodeHead(msg)
	if err != nil {
		return err
	}
	task, err := events.NewProcessOrderTask(event, msg.Metadata.Get(events.MetadataRequestID))
	if err != nil {
		return err
	}
	ctx := msg.Context()
	task.SetContext(ctx)
	telemetry.Inject(ctx, task) // the task continues the event's trace
	if err := publishWithin(h.tasks, h.topic, task, taskConfirmTimeout); err != nil {
		return fmt.Errorf("order %s: %w: %w", event.OrderID, errTaskNotPublished, err)
	}
	return nil
}

// taskConfirmTimeout bounds the wait for the broker's confirm of a task. A
// quorum queue confirms once a majority of its nodes has the message, so
// while it elects a new leader, or has lost its majority, a confirm can take
// long or never come on a channel that stays open.
const taskConfirmTimeout = 5 * time.Second

// errConfirmTimeout: the broker did not confirm a task in time; it may still
// deliver it, and the retry publishes the same task id again, which the
// task handler's inbox recognises.
var errConfirmTimeout = errors.New("no confirm from RabbitMQ in time")

// publishWithin publishes msg and waits for its confirm at most d.
// Watermill's publisher waits for the confirm with no deadline, so the
// publish runs aside; one given up on still holds its pooled channel until
// the broker confirms or the connection closes. It does not also end with
// the event's context: in TestShutdownRequeuesTheTaskInHand that context
// was cancelled while the publish was under way, and the error handed the
// event back for a redelivery, over and over (cause not yet understood).
func publishWithin(pub message.Publisher, topic string, msg *message.Message, d time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- pub.Publish(topic, msg) }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		return fmt.Errorf("%w (%s)", errConfirmTimeout, d)
	}
}

// logStatusChange consumes order_status_changed events. It gives the topic a
// durable queue, so the events are kept for consumers to come, and leaves an
// audit line per change.
func logStatusChange(logger *slog.Logger) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		event, err := events.DecodeEvent(msg)
		if err != nil {
			return err
		}
		logger.InfoContext(msg.Context(), "order status changed",
			slog.String("order_id", event.Order.ID.String()),
			slog.String("from", event.PreviousStatus),
			slog.String("to", event.Order.Status),
			slog.String("request_id", msg.Metadata.Get(events.MetadataRequestID)))
		return nil
	}
}

// processOrder is the task handler: it does the (simulated) work, then sets
// processed_at and records the task id in the inbox in one transaction
// (grouped with the other handlers' tasks), so a redelivered task changes
// nothing.
type processOrder struct {
	marks    *groupCommit
	duration time.Duration
	logger   *slog.Logger
	latency  func(time.Duration) // commit -> processed, for the metrics
}

var errOrderMissing = errors.New("order does not exist")

func (h *processOrder) handle(msg *message.Message) error {
	task, err := events.DecodeProcessOrderTask(msg)
	if err != nil {
		return err
	}
	ctx := msg.Context()
	h.logger.DebugContext(ctx, "processing order", slog.String("order_id", task.OrderID.String()), slog.String("message_id", msg.UUID))
	if err := simulateWork(ctx, h.duration); err != nil {
		return err
	}

	marked, err := h.marks.mark(ctx, task.OrderID, msg.UUID)
	if err != nil {
		return fmt.Errorf("process order %s: %w", task.OrderID, err)
	}
	if marked == nil {
		return fmt.Errorf("process order %s: %w", task.OrderID, errOrderMissing)
	}
	if !marked.First {
		h.logger.InfoContext(ctx, "duplicate task ignored", slog.String("order_id", task.OrderID.String()), slog.String("message_id", msg.UUID))
		return nil
	}
	h.latency(marked.ProcessedAt.Sub(marked.CreatedAt))
	h.logger.InfoContext(ctx, "order processed",
		slog.String("order_id", task.OrderID.String()),
		slog.String("message_id", msg.UUID),
		slog.Time("processed_at", *marked.ProcessedAt),
		slog.String("request_id", msg.Metadata.Get(events.MetadataRequestID)))
	return nil
}

// simulateWork stands in for the real processing; it stops early when the
// message's context ends (shutdown or handler timeout), leaving the message
// to be redelivered.
func simulateWork(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if err := sleepContext(ctx, d); err != nil {
		return fmt.Errorf("processing interrupted: %w", err)
	}
	return nil
}
