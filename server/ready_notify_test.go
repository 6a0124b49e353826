package main

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// The API tells its service manager READY=1 exactly when its /ready would
// answer 200: not while migrations are pending (it reports its address
// already, with STATUS=starting), and as soon as they are applied.
func TestReadyIsAnnouncedOnceMigrated(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewEmpty(t)
	ts := startUnreadyServer(t, map[string]string{"DATABASE_URL": dbURL, "MIGRATE_ON_START": "false", "DEBUG_ADDR": "127.0.0.1:0"})

	early, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	state, err := ts.proc.Wait(early, "READY", "1")
	require.ErrorIs(t, err, context.DeadlineExceeded, "not ready while migrations are pending")
	require.Equal(t, "starting", state["STATUS"])
	require.Equal(t, ts.URL, "http://"+state[process.HTTPAddr])
	require.NotEmpty(t, state[process.DebugAddr], "the profiler's address is reported too")

	require.NoError(t, database.Migrate(context.Background(), dbURL, slog.New(slog.DiscardHandler)))
	wait, stop := context.WithTimeout(context.Background(), 20*time.Second)
	defer stop()
	state, err = ts.proc.Wait(wait, "READY", "1")
	require.NoError(t, err)
	require.Equal(t, "serving", state["STATUS"])
	ready, err := ts.Client.GetReadyWithResponse(wait)
	require.NoError(t, err)
	require.Equal(t, 200, ready.StatusCode(), "%s", ready.Body)
}
