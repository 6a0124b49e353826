// Package telemetry sets up tracing (OpenTelemetry, W3C trace context) and
// carries the trace through Watermill messages, so that one order's path —
// HTTP request, outbox, RabbitMQ, event handler, task handler — is one trace.
// Tracing is off unless an OTLP endpoint is configured with the standard
// OTEL_* variables; the trace context is propagated either way.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// propagator is W3C trace context; it is set globally too, for libraries.
var propagator = propagation.TraceContext{}

// Setup installs the global tracer provider and returns its shutdown and
// whether tracing is on (callers skip their instrumentation when off). It
// reads OTEL_TRACES_EXPORTER ("otlp" or "none"), OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (an http(s) URL), and
// OTEL_SERVICE_NAME (default: service) through getenv.
func Setup(ctx context.Context, service string, getenv func(string) string) (func(context.Context) error, bool, error) {
	otel.SetTextMapPropagator(propagator)
	endpoint := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	var opts []otlptracehttp.Option
	if endpoint != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(endpoint))
	} else if base := getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
		opts = append(opts, otlptracehttp.WithEndpointURL(base+"/v1/traces"))
	}
	exporterKind := getenv("OTEL_TRACES_EXPORTER")
	if exporterKind == "none" || (len(opts) == 0 && exporterKind != "otlp") {
		return func(context.Context) error { return nil }, false, nil
	}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, false, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	if name := getenv("OTEL_SERVICE_NAME"); name != "" {
		service = name
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(service))),
	)
	otel.SetTracerProvider(tp)
	return tp.Shutdown, true, nil
}

// Tracer is the project's tracer.
func Tracer() trace.Tracer { return otel.Tracer("github.com/ordersvc/orders") }

// Inject writes ctx's trace context into the message metadata (the
// "traceparent" key), which Watermill carries through the outbox row and the
// AMQP headers.
func Inject(ctx context.Context, msg *message.Message) {
	propagator.Inject(ctx, metadataCarrier(msg.Metadata))
}

// Extract returns msg's context joined to the trace the metadata names.
func Extract(msg *message.Message) context.Context {
	return propagator.Extract(msg.Context(), metadataCarrier(msg.Metadata))
}

type metadataCarrier message.Metadata

func (c metadataCarrier) Get(key string) string { return message.Metadata(c).Get(key) }
func (c metadataCarrier) Set(key, value string) { message.Metadata(c).Set(key, value) }
func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// Propagate is Middleware for a process that records no spans (tracing
// off): the handler's context carries the message's trace context, and the
// messages the handler produces carry it on, without a span started and
// ended per message.
func Propagate(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := Extract(msg)
		msg.SetContext(ctx)
		produced, err := h(msg)
		for _, p := range produced {
			Inject(ctx, p)
		}
		return produced, err
	}
}

// Middleware runs each Watermill handler in a span that continues the
// message's trace; messages the handler produces carry the span on.
func Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx, span := Tracer().Start(Extract(msg), message.HandlerNameFromCtx(msg.Context()),
			trace.WithSpanKind(trace.SpanKindConsumer))
		defer span.End()
		msg.SetContext(ctx)
		produced, err := h(msg)
		if err != nil {
			span.RecordError(err)
		}
		for _, p := range produced {
			Inject(ctx, p)
		}
		return produced, err
	}
}

// LogHandler adds trace_id and span_id to every record logged with a
// context that carries a span.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler { return LogHandler{h.Handler.WithGroup(name)} }
