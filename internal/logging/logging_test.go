package logging

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// TestFormatsCarryTheSameFields: whatever a process logs, LOG_FORMAT=text
// and LOG_FORMAT=json write the same keys with the same values (a JSON
// group is the text's dotted keys), only the time differs in precision.
func TestFormatsCarryTheSameFields(t *testing.T) {
	t.Parallel()
	records := map[string][]map[string]any{}
	raw := map[string]string{}
	for _, format := range []string{FormatJSON, FormatText} {
		logs := testlog.NewSink()
		logger := New(logs, watermill.LevelTrace, format).With(slog.String("component", "forwarder"))
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5}, TraceFlags: trace.FlagsSampled,
		})
		ctx := trace.ContextWithSpanContext(context.Background(), sc)
		logger.InfoContext(ctx, "workers running",
			slog.Group("handlers", slog.Int("process_order", 128), slog.Int("status_log", 1)),
			slog.Any("queues", []string{"orders.process_order", "orders.dead_letters"}),
			slog.String("database", "postgres://127.0.0.1:5432/orders"),
			slog.Bool("tracing", false))
		logger.Warn("shutting down", slog.Duration("timeout", 1500*time.Millisecond), slog.Any("error", errors.New("broker said \"no\"")))
		logger.Log(context.Background(), watermill.LevelTrace, "message acked", slog.Float64("ratio", 0.25))
		records[format], raw[format] = logs.Records(), logs.String()
		require.Len(t, records[format], 3, "%s:\n%s", format, logs.String())
	}
	require.True(t, strings.HasPrefix(raw[FormatText], "time="), "text lines are not JSON:\n%s", raw[FormatText])
	require.True(t, strings.HasPrefix(raw[FormatJSON], "{"), raw[FormatJSON])
	for i, js := range records[FormatJSON] {
		want := testlog.Flat(js)
		got := testlog.Flat(records[FormatText][i])
		delete(want, "time")
		delete(got, "time")
		require.Equal(t, want, got, "record %d", i)
	}
	require.Equal(t, "1.5s", records[FormatJSON][1]["timeout"], "a duration as people write it, not nanoseconds")
	require.Equal(t, "TRACE", records[FormatJSON][2]["level"])
	require.Equal(t, "01020300000000000000000000000000", records[FormatJSON][0]["trace_id"])
}

// TestAutoFormat: with LOG_FORMAT unset, output that is not a terminal (a
// pipe, a file, a log collector) gets JSON.
func TestAutoFormat(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	New(f, slog.LevelInfo, FormatAuto).Info("started")
	require.NoError(t, f.Close())
	out, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(out, []byte(`{"time":`)), "%s", out)

	var buf bytes.Buffer
	New(&buf, slog.LevelInfo, FormatText).Info("started")
	require.True(t, bytes.HasPrefix(buf.Bytes(), []byte("time=")), "%s", buf.String())
}

func TestEndpointLeavesCredentialsOut(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"postgres://app:s3cret@db:5432/orders?sslmode=require&password=s3cret": "postgres://db:5432/orders",
		"amqp://guest:guest@mq1:5672/,amqp://guest:guest@mq2:5672/":            "amqp://mq1:5672/,amqp://mq2:5672/",
		"redis://:s3cret@cache:6379/0":                                         "redis://cache:6379/0",
		"redis://127.0.0.1:6379/0":                                             "redis://127.0.0.1:6379/0",
	} {
		require.Equal(t, want, Endpoint(raw), raw)
	}
}
