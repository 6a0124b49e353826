package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// An idle workers process costs the database at most one transaction a
// second, after a burst of orders as on a fresh start: its forwarders wait
// for notifications, and only one of them claims for the full scan that
// follows activity and then for each safety poll (OUTBOX_SAFETY_POLL) (a
// claim is two transactions: the pool's liveness ping of a connection idle
// for over a second, and the claim). Counted by PostgreSQL
// (pg_stat_database.xact_commit) on the test's own database, read from
// another one so that reading does not count.
func TestIdleWorkersCostAtMostOneTransactionASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u, err := url.Parse(e.dbURL)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/")
	e.start(nil)
	// A burst of orders wakes every forwarder: each claims from its floor.
	var last uuid.UUID
	for range 200 {
		last = e.createOrder().ID
	}
	e.waitProcessed(last, 20*time.Second)
	admin, err := pgx.Connect(context.Background(), testdb.AdminURL())
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	commits := func() int64 {
		var n int64
		require.NoError(t, admin.QueryRow(context.Background(), "SELECT pg_stat_clear_snapshot()::text").Scan(new(string)))
		require.NoError(t, admin.QueryRow(context.Background(), "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", name).Scan(&n))
		return n
	}

	// Past start-up (first claims, retention), and past the 10 s after which
	// an idle PostgreSQL backend reports what it did before.
	time.Sleep(11 * time.Second)
	const window = 10 * time.Second
	before := commits()
	time.Sleep(window)
	n := commits() - before
	t.Logf("idle workers process: %d transactions committed in %s", n, window)
	require.LessOrEqual(t, n, int64(window/time.Second))
}
