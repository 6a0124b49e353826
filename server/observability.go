package main

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersvc/orders/internal/metrics"
)

// httpMetrics counts requests by route, method and status and times them,
// and counts what the edge decides: cache outcomes and rate-limit refusals.
type httpMetrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	cacheReads  *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metrics.Namespace, Name: "http_requests_total",
			Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metrics.Namespace, Name: "http_request_duration_seconds",
			Help: "HTTP request latency by route template and method.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route", "method"}),
	}
	m.cacheReads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "cache_reads_total",
		Help: "Order cache reads by outcome: hit, miss, fallback (Redis unavailable: read from PostgreSQL).",
	}, []string{"outcome"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: metrics.Namespace, Name: "rate_limited_total",
		Help: "Requests refused with 429, by budget.",
	}, []string{"bucket"})
	reg.MustRegister(m.requests, m.duration, m.cacheReads, m.rateLimited)
	// The known outcomes and budgets are exposed at 0 from the start, so
	// that the first fallback or 429 is an increase the dashboard shows.
	for _, outcome := range []string{"hit", "miss", "fallback"} {
		m.cacheReads.WithLabelValues(outcome)
	}
	for _, bucket := range []string{"auth", "login", "user", "anonymous"} {
		m.rateLimited.WithLabelValues(bucket)
	}
	return m
}

func (m *httpMetrics) cacheRead(outcome string) { m.cacheReads.WithLabelValues(outcome).Inc() }

// middleware records every request; it runs after the error handler wrote
// the answer (see accessLog), so the status is the one the client got.
func (m *httpMetrics) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		route := c.Path()
		if route == "" {
			route = "unmatched" // unknown paths must not create a series each
		}
		method := methodLabel(c.Request().Method)
		m.requests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
		m.duration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return err
	}
}

// knownMethods are the methods that get a label value of their own; any
// other (a client may send any token as a method) shares "other", so that
// invented methods cannot create series without bound.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func methodLabel(method string) string {
	if knownMethods[method] {
		return method
	}
	return "other"
}

// traced wraps the whole handler in an OpenTelemetry server span that
// continues an incoming W3C traceparent; nameSpan then names it after the
// route template once Echo has routed the request.
func traced(h http.Handler) http.Handler {
	return otelhttp.NewHandler(h, "http.request")
}

func nameSpan(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if span := trace.SpanFromContext(c.Request().Context()); span.IsRecording() {
			span.SetName(methodLabel(c.Request().Method) + " " + c.Path())
		}
		return next(c)
	}
}
