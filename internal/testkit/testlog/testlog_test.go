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
