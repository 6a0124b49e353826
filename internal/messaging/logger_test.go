package messaging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/require"
)

func TestLoggerKeepsLevelsAndFields(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // messages expected in the output
		not   []string
	}{
		{slog.LevelInfo, []string{"error line"}, []string{"info line", "debug line", "trace line"}},
		{slog.LevelDebug, []string{"debug line", "info line"}, []string{"trace line"}},
		{watermill.LevelTrace, []string{"trace line", "debug line", "info line"}, nil},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			var out bytes.Buffer
			l := Logger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: tc.level}))).
				With(watermill.LogFields{"handler": "h1"})
			fields := watermill.LogFields{"message_uuid": "m1"}
			l.Trace("trace line", fields)
			l.Debug("debug line", fields)
			l.Info("info line", fields)
			l.Error("error line", nil, fields)
			got := out.String()
			for _, msg := range tc.want {
				line := lineWith(got, msg)
				if line == "" {
					t.Fatalf("%q missing at level %s:\n%s", msg, tc.level, got)
				}
				if !strings.Contains(line, "handler=h1") || !strings.Contains(line, "message_uuid=m1") {
					t.Errorf("%q lost its fields: %s", msg, line)
				}
			}
			for _, msg := range tc.not {
				if lineWith(got, msg) != "" {
					t.Errorf("%q logged at level %s", msg, tc.level)
				}
			}
		})
	}
}

func lineWith(out, msg string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, msg) {
			return line
		}
	}
	return ""
}

// TestBrokerOutageIsTwoLines feeds the adapter what watermill-amqp logs when
// the broker goes away under three connections and a few hundred
// subscribers, and comes back: at info level that is one line when the
// first connection is lost and one when the last is back, both at warn.
func TestBrokerOutageIsTwoLines(t *testing.T) {
	var out bytes.Buffer
	l := Logger(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	subscriber := l.With(watermill.LogFields{"topic": "t"})
	for range 3 {
		l.Error(msgConnectionClosed, errors.New("connection reset"), nil)
	}
	for range 200 {
		subscriber.Error("Channel closed, stopping ProcessMessages", nil, nil)
		subscriber.Error("Failed to prepare consume", errors.New("not connected"), nil)
		l.Error("Cannot reconnect to AMQP, retrying", errors.New("refused"), nil)
		subscriber.Error(msgHandlerError, errors.New("publish failed"), nil)
	}
	l.Error("an unrelated failure", errors.New("boom"), nil)
	for i := range 3 {
		l.Info(msgConnected, nil)
		if i == 1 {
			require.NotContains(t, out.String(), "RabbitMQ connection back", "back only when every connection is")
		}
	}
	subscriber.Error(msgHandlerError, errors.New("after the outage"), nil)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 4, out.String())
	require.Contains(t, lines[0], "level=WARN msg=\"RabbitMQ connection lost; reconnecting\"")
	require.Contains(t, lines[1], "an unrelated failure")
	require.Contains(t, lines[2], "level=WARN msg=\"RabbitMQ connection back\"")
	require.Contains(t, lines[3], "after the outage")
}
