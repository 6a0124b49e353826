package messaging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill"
)

func TestLoggerKeepsLevelsAndFields(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  []string // messages expected in the output
		not   []string
	}{
		{slog.LevelInfo, []string{"info line", "error line"}, []string{"debug line", "trace line"}},
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
