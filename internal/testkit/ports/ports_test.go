package ports

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFreeHandsOutBindablePortsOnce: every port is bindable, below the
// ephemeral range, never handed out twice, and its offset ports are free too.
func TestFreeHandsOutBindablePortsOnce(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for range 50 {
		p := Free(t, 10000)
		require.GreaterOrEqual(t, p, first)
		require.Less(t, p+10000, 32768, "below the ephemeral range")
		require.False(t, seen[p], "port %d handed out twice", p)
		require.False(t, seen[p+10000])
		seen[p], seen[p+10000] = true, true
		l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
}

// TestFreeSkipsABoundPort: a port some process listens on is never handed out.
func TestFreeSkipsABoundPort(t *testing.T) {
	t.Parallel()
	taken := Free(t)
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
	require.NoError(t, err)
	defer l.Close() //nolint:errcheck // test cleanup
	mu.Lock()
	delete(handed, taken) // as if another binary had handed it out
	mu.Unlock()
	for range 200 {
		require.NotEqual(t, taken, Free(t))
	}
}
