package telemetry

import (
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

// TestPropagateCarriesTheTraceOn: with tracing off, a handler still sees the
// trace its message came with, and what it produces continues that trace.
func TestPropagateCarriesTheTraceOn(t *testing.T) {
	t.Parallel()
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	in := message.NewMessage("1", nil)
	in.Metadata.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	var seen trace.SpanContext
	handler := Propagate(func(msg *message.Message) ([]*message.Message, error) {
		seen = trace.SpanContextFromContext(msg.Context())
		return []*message.Message{message.NewMessage("2", nil)}, nil
	})
	out, err := handler(in)
	require.NoError(t, err)
	require.Equal(t, traceID, seen.TraceID().String())
	require.Len(t, out, 1)
	require.Contains(t, out[0].Metadata.Get("traceparent"), traceID)

	// A message without a trace produces messages without one.
	out, err = handler(message.NewMessage("3", nil))
	require.NoError(t, err)
	require.Empty(t, out[0].Metadata.Get("traceparent"))
}
