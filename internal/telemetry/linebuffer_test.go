package telemetry

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer safe for the flush goroutine and the test.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.writes++
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLineBufferBatchesUntilTheNextFlush(t *testing.T) {
	t.Parallel()
	out := &lockedBuffer{}
	b := NewLineBuffer(out, 1<<10, 50*time.Millisecond)
	defer b.Close() //nolint:errcheck // in-memory writer
	for i := range 10 {
		_, err := fmt.Fprintf(b.Buffered(), "line %d\n", i)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return strings.Count(out.String(), "\n") == 10 }, 2*time.Second, 5*time.Millisecond,
		"written within the flush interval, nothing else happening")
	out.mu.Lock()
	writes := out.writes
	out.mu.Unlock()
	require.Less(t, writes, 10, "fewer writes than lines")
}

func TestLineBufferKeepsOrderAndLosesNothing(t *testing.T) {
	t.Parallel()
	out := &lockedBuffer{}
	b := NewLineBuffer(out, 256, time.Hour) // only a full buffer, a direct line or Close writes
	_, err := b.Buffered().Write([]byte("request 1\n"))
	require.NoError(t, err)
	require.Empty(t, out.String(), "a buffered line waits")
	_, err = b.Write([]byte("error\n"))
	require.NoError(t, err)
	require.Equal(t, "request 1\nerror\n", out.String(), "a direct line goes out at once, after what was pending")

	const writers, lines = 8, 500
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range lines {
				_, _ = fmt.Fprintf(b.Buffered(), "w%d-%d\n", w, i)
			}
		}()
	}
	wg.Wait()
	_, err = b.Buffered().Write([]byte("last before shutdown\n"))
	require.NoError(t, err)
	require.NoError(t, b.Close())
	_, err = b.Buffered().Write([]byte("after close\n"))
	require.NoError(t, err)

	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	require.Len(t, got, 2+writers*lines+2)
	seen := map[string]bool{}
	for _, line := range got {
		require.False(t, seen[line], "line %q written twice", line)
		seen[line] = true
	}
	for w := range writers {
		for i := range lines {
			require.True(t, seen[fmt.Sprintf("w%d-%d", w, i)], "line w%d-%d lost", w, i)
		}
	}
	require.Equal(t, []string{"last before shutdown", "after close"}, got[len(got)-2:], "Close wrote what was pending")
}
