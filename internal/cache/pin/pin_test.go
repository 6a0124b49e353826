package pin_test

import (
	"testing"
	"unsafe"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/cache/pin"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// argsAddr is where a command's arguments live: rueidis recycles that array.
func argsAddr(cmd rueidis.Completed) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(cmd.Commands())))
}

// reused sends 200 commands through c, one after the other, and reports
// whether a command was built on the arguments of one already sent. The
// commands sent are kept, so that only rueidis's pool, not the garbage
// collector, can give their memory to a later command.
func reused(t *testing.T, c rueidis.Client, key string, multi bool) bool {
	t.Helper()
	seen := map[uintptr]rueidis.Completed{}
	for range 200 {
		cmd := c.B().Get().Key(key).Build()
		addr := argsAddr(cmd)
		if _, ok := seen[addr]; ok {
			return true
		}
		seen[addr] = cmd
		var err error
		if multi {
			err = c.DoMulti(t.Context(), cmd)[0].Error()
		} else {
			err = c.Do(t.Context(), cmd).Error()
		}
		require.True(t, err == nil || rueidis.IsRedisNil(err), "GET: %v", err)
	}
	return false
}

// TestPinnedCommandsAreNeverReused: rueidis hands a sent command's arguments
// to the next command built, unless the command went through a pinned
// client, by Do or DoMulti, on the client or on one of its nodes.
func TestPinnedCommandsAreNeverReused(t *testing.T) {
	key := testredis.Prefix(t) + ":k"
	opt, err := rueidis.ParseURL(testredis.URL())
	require.NoError(t, err)
	opt.DisableCache = true
	plain, err := rueidis.NewClient(opt)
	require.NoError(t, err)
	t.Cleanup(plain.Close)

	require.True(t, reused(t, plain, key, false), "an unpinned client's commands are recycled (else this test shows nothing)")
	pinned := pin.Client(plain)
	require.Equal(t, pinned, pin.Client(pinned), "pinning twice wraps once")
	for _, multi := range []bool{false, true} {
		require.False(t, reused(t, pinned, key, multi), "pinned client, DoMulti %v", multi)
		for addr, node := range pinned.Nodes() {
			require.False(t, reused(t, node, key, multi), "pinned client's node %s, DoMulti %v", addr, multi)
		}
	}
}
