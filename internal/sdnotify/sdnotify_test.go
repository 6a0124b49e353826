package sdnotify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/sdnotify"
)

func listen(t *testing.T) *sdnotify.Listener {
	t.Helper()
	l, err := sdnotify.Listen()
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestReadyCarriesOurAssignments(t *testing.T) {
	t.Parallel()
	l := listen(t)
	n := sdnotify.FromEnv(func(k string) string { return map[string]string{"NOTIFY_SOCKET": l.Socket()}[k] })
	require.True(t, n.Enabled())

	require.NoError(t, n.Notify(sdnotify.Status("starting")))
	require.NoError(t, n.Notify(sdnotify.Ready, sdnotify.Status("serving"), sdnotify.Var("X_ORDERS_HTTP_ADDR", "127.0.0.1:4321")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	state, err := l.Wait(ctx, "READY", "1")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"READY": "1", "STATUS": "serving", "X_ORDERS_HTTP_ADDR": "127.0.0.1:4321"}, state,
		"the latest value of each assignment, sent in one datagram with READY=1")
}

func TestWaitEndsWithItsContext(t *testing.T) {
	t.Parallel()
	l := listen(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := l.Wait(ctx, "READY", "1")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestWithoutSocketNothingIsSent(t *testing.T) {
	t.Parallel()
	n := sdnotify.FromEnv(func(string) string { return "" })
	require.False(t, n.Enabled())
	require.NoError(t, n.Notify(sdnotify.Ready), "a process not started by a service manager runs as before")
}

func TestNotifyRefusesWhatIsNotOneAssignment(t *testing.T) {
	t.Parallel()
	l := listen(t)
	n := sdnotify.FromEnv(func(string) string { return l.Socket() })
	require.Error(t, n.Notify("READY"))
	require.Error(t, n.Notify(sdnotify.Status("two\nlines")), "a newline would smuggle in another assignment")
}

func TestNotifyToAGoneManagerFails(t *testing.T) {
	t.Parallel()
	l, err := sdnotify.Listen()
	require.NoError(t, err)
	socket := l.Socket()
	require.NoError(t, l.Close())
	require.Error(t, sdnotify.FromEnv(func(string) string { return socket }).Notify(sdnotify.Ready))
}
