package main

import (
	"context"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/metrics"
)

// workerMetrics are the workers' own series, next to the runtime and
// database pool ones of metrics.NewRegistry.
type workerMetrics struct {
	attempts   *prometheus.CounterVec   // handler, outcome: ok | error
	deadLetter *prometheus.CounterVec   // handler
	retries    prometheus.Counter       // every retry scheduled
	duration   *prometheus.HistogramVec // handler
	processing prometheus.Histogram     // order committed -> processed
	taskGroup  prometheus.Histogram     // tasks written per group commit
}

func newWorkerMetrics(reg prometheus.Registerer, queries *db.Queries, routes messaging.Table) *workerMetrics {
	m := &workerMetrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "handler_attempts_total",
			Help: "Handler attempts by outcome (an attempt that fails is retried or dead-lettered).",
		}, []string{"handler", "outcome"}),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "dead_lettered_total",
			Help: "Messages moved to the dead-letter queue.",
		}, []string{"handler"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "handler_retries_total",
			Help: "Retries scheduled after a failed attempt.",
		}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "handler_duration_seconds",
			Help: "Duration of one handler attempt.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"handler"}),
		processing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "order_processing_latency_seconds",
			Help: "From the order's commit to processed_at.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		taskGroup: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "task_group_size",
			Help: "process_order tasks written in one transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 8),
		}),
	}
	reg.MustRegister(m.attempts, m.deadLetter, m.retries, m.duration, m.processing, m.taskGroup, &outboxCollector{queries: queries})
	// Every handler's series exist from the start at 0, so that a first
	// dead letter or error is an increase (rate, increase and the alerts of
	// deploy/prometheus see nothing in a series that appears at 1).
	for _, r := range routes {
		m.deadLetter.WithLabelValues(r.Handler)
		m.attempts.WithLabelValues(r.Handler, "ok")
		m.attempts.WithLabelValues(r.Handler, "error")
	}
	return m
}

// measure records each attempt's outcome and duration, labelled with the
// route's handler (every instance of a route shares its series); it sits
// inside the retry middleware so that every attempt counts.
func (m *workerMetrics) measure(in instances) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			handler := in.handler(message.HandlerNameFromCtx(msg.Context()))
			start := time.Now()
			out, err := h(msg)
			m.duration.WithLabelValues(handler).Observe(time.Since(start).Seconds())
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			m.attempts.WithLabelValues(handler, outcome).Inc()
			return out, err
		}
	}
}

// deadLetters wraps the poison queue's publisher: it names the route's
// handler on each letter (messaging.DeadLetterHandlerKey, what the dlq
// commands read) and counts what it parks.
type deadLetters struct {
	message.Publisher
	m         *workerMetrics
	instances instances
}

func (d deadLetters) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		msg.Metadata.Set(messaging.DeadLetterHandlerKey, d.instances.handler(msg.Metadata.Get(middleware.PoisonedHandlerKey)))
	}
	err := d.Publisher.Publish(topic, msgs...)
	if err == nil {
		for _, msg := range msgs {
			d.m.deadLetter.WithLabelValues(msg.Metadata.Get(messaging.DeadLetterHandlerKey)).Inc()
		}
	}
	return err
}

// outboxCollector reads the backlog at scrape time.
type outboxCollector struct{ queries *db.Queries }

var (
	outboxPending = prometheus.NewDesc(metrics.Namespace+"_outbox_pending", "Events in the outbox not yet forwarded to RabbitMQ.", nil, nil)
	outboxAge     = prometheus.NewDesc(metrics.Namespace+"_outbox_oldest_age_seconds", "Age of the oldest unforwarded event (0 when none).", nil, nil)
	outboxUp      = prometheus.NewDesc(metrics.Namespace+"_outbox_scrape_ok", "1 when the outbox could be read at this scrape.", nil, nil)
)

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- outboxPending
	ch <- outboxAge
	ch <- outboxUp
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := c.queries.OutboxBacklog(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(outboxUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(outboxUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(outboxPending, prometheus.GaugeValue, float64(b.Pending))
	ch <- prometheus.MustNewConstMetric(outboxAge, prometheus.GaugeValue, b.OldestAgeSeconds)
}
