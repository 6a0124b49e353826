package testlog

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLineSplitAcrossWrites: a process's output comes through a pipe in
// chunks that may end mid-line; the line is recorded once, whole.
func TestLineSplitAcrossWrites(t *testing.T) {
	t.Parallel()
	s := NewSink()
	_, err := s.Write([]byte(`{"msg":"first"}` + "\n" + `{"msg":"sec`))
	require.NoError(t, err)
	require.Len(t, s.Records(), 1, "the unfinished line waits for its end")
	_, err = s.Write([]byte(`ond","n":2}` + "\n"))
	require.NoError(t, err)
	records := s.Records()
	require.Len(t, records, 2)
	require.Equal(t, "second", records[1]["msg"])
	require.Len(t, s.Find("second"), 1)
}

// TestTextLines: LOG_FORMAT=text lines are records too, quoted values
// unquoted, groups as dotted keys; other output is not.
func TestTextLines(t *testing.T) {
	t.Parallel()
	s := NewSink()
	_, err := s.Write([]byte(`time=2026-01-02T03:04:05.000Z level=INFO msg="workers running" forwarders.count=8 queues="[a b]" note="say \"hi\"" empty=""` + "\n" +
		"panic: not a log line\n" +
		`level=WARN msg=stopped` + "\n"))
	require.NoError(t, err)
	records := s.Records()
	require.Len(t, records, 2, s.String())
	require.Equal(t, map[string]any{
		"time": "2026-01-02T03:04:05.000Z", "level": "INFO", "msg": "workers running",
		"forwarders.count": "8", "queues": "[a b]", "note": `say "hi"`, "empty": "",
	}, records[0])
	_, ok := s.WaitFor("stopped", 0)
	require.True(t, ok)
}
