package database_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// terminate ends the backend pid from another connection, as a PostgreSQL
// shutdown does to every session, and waits until it is gone.
func terminate(t *testing.T, pid uint32) {
	t.Helper()
	admin := connect(t, testdb.AdminURL())
	_, err := admin.Exec(t.Context(), "SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int
		err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n)
		return err == nil && n == 0
	}, 10*time.Second, 10*time.Millisecond)
}

func databaseName(t *testing.T, dbURL string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	return strings.TrimPrefix(u.Path, "/")
}

// TestUnavailableTellsOutagesFromBugs classifies errors that real PostgreSQL
// failures produce: what an outage gives is unavailable, what a wrong
// statement or a caller going away gives is not.
func TestUnavailableTellsOutagesFromBugs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		err         func(t *testing.T) error
		unavailable bool
	}{
		{"connection refused", func(t *testing.T) error {
			_, err := pgx.Connect(t.Context(), "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable")
			return err
		}, true},
		{"database refuses connections", func(t *testing.T) error {
			dbURL := testdb.New(t)
			_, err := connect(t, testdb.AdminURL()).Exec(t.Context(), "ALTER DATABASE "+databaseName(t, dbURL)+" ALLOW_CONNECTIONS false")
			require.NoError(t, err)
			_, err = pgx.Connect(t.Context(), dbURL)
			return err
		}, true},
		{"session terminated (57P01)", func(t *testing.T) error {
			conn := connect(t, testdb.New(t))
			terminate(t, conn.PgConn().PID())
			_, err := conn.Exec(t.Context(), "SELECT 1")
			return err
		}, true},
		{"connection already closed", func(t *testing.T) error {
			conn, err := pgx.Connect(t.Context(), testdb.New(t))
			require.NoError(t, err)
			require.NoError(t, conn.Close(t.Context()))
			_, err = conn.Exec(t.Context(), "SELECT 1")
			return err
		}, true},
		{"undefined table", func(t *testing.T) error {
			_, err := connect(t, testdb.New(t)).Exec(t.Context(), "SELECT * FROM no_such_table")
			return err
		}, false},
		{"division by zero", func(t *testing.T) error {
			var n int
			return connect(t, testdb.New(t)).QueryRow(t.Context(), "SELECT 1 / (random() * 0)::int").Scan(&n)
		}, false},
		{"no rows", func(t *testing.T) error {
			_, err := db.New(connect(t, testdb.New(t))).GetUserByEmail(t.Context(), "nobody@example.com")
			return err
		}, false},
		{"caller went away", func(t *testing.T) error {
			conn := connect(t, testdb.New(t))
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := conn.Exec(ctx, "SELECT 1")
			return err
		}, false},
		{"caller's deadline", func(t *testing.T) error {
			conn := connect(t, testdb.New(t))
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err := conn.Exec(ctx, "SELECT pg_sleep(5)")
			return err
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.err(t)
			require.Error(t, err)
			require.Equal(t, tt.unavailable, database.Unavailable(err), "%v", err)
			require.Equal(t, tt.unavailable, errors.Is(database.Classify(err), apperr.ErrUnavailable), "%v", err)
		})
	}
}

// TestUnavailableSQLStates pins the server error codes that only a real
// shutdown, crash or start-up produces, which a test cannot cause on the
// shared server.
func TestUnavailableSQLStates(t *testing.T) {
	t.Parallel()
	for code, want := range map[string]bool{
		"57P01": true,  // admin_shutdown
		"57P02": true,  // crash_shutdown
		"57P03": true,  // cannot_connect_now (starting up, shutting down)
		"08006": true,  // connection_failure
		"08001": true,  // sqlclient_unable_to_establish_sqlconnection
		"53300": true,  // too_many_connections
		"57014": false, // query_canceled (statement_timeout): the statement, not the server
		"23505": false, // unique_violation
		"42P01": false, // undefined_table
		"40001": false, // serialization_failure
	} {
		err := fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code})
		require.Equal(t, want, database.Unavailable(err), code)
	}
	require.False(t, database.Unavailable(nil))
}

// createUser is a statement with an effect that a test can count.
func createUser(ctx context.Context, tx pgx.Tx, email string) error {
	_, err := db.New(tx).CreateUser(ctx, db.CreateUserParams{Email: email, PasswordHash: "x"})
	return err
}

func countUsers(t *testing.T, dbURL, email string) int {
	t.Helper()
	var n int
	require.NoError(t, connect(t, dbURL).QueryRow(t.Context(), "SELECT count(*) FROM users WHERE email = $1", email).Scan(&n))
	return n
}

// TestInTxRetriesOnceAfterAnOutageBeforeCommit kills the transaction's
// session halfway through, as a restart does: the transaction runs again on
// a fresh connection and commits exactly once, without the caller noticing.
func TestInTxRetriesOnceAfterAnOutageBeforeCommit(t *testing.T) {
	t.Parallel()
	pool, dbURL := testdb.Pool(t, 4)

	var attempts atomic.Int32
	err := database.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		if err := createUser(t.Context(), tx, "retried@example.com"); err != nil {
			return err
		}
		if attempts.Add(1) == 1 {
			terminate(t, tx.Conn().PgConn().PID())
		}
		_, err := tx.Exec(t.Context(), "SELECT 1")
		return err
	})
	require.NoError(t, err)
	require.EqualValues(t, 2, attempts.Load())
	require.Equal(t, 1, countUsers(t, dbURL, "retried@example.com"))
}

// TestInTxDoesNotRepeatAnUncertainCommit: when the session dies after the
// last statement, the COMMIT is sent on a dead connection; PostgreSQL did not
// commit here, but in general the driver cannot tell, so the transaction is
// not run again and the caller gets an outage.
func TestInTxDoesNotRepeatAnUncertainCommit(t *testing.T) {
	t.Parallel()
	pool, dbURL := testdb.Pool(t, 4)

	var attempts atomic.Int32
	err := database.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		attempts.Add(1)
		if err := createUser(t.Context(), tx, "uncertain@example.com"); err != nil {
			return err
		}
		terminate(t, tx.Conn().PgConn().PID())
		return nil
	})
	require.ErrorIs(t, err, apperr.ErrUnavailable)
	require.Contains(t, err.Error(), "commit")
	require.EqualValues(t, 1, attempts.Load())
	require.Zero(t, countUsers(t, dbURL, "uncertain@example.com"))
}

// TestInTxDoesNotRetryBugs: a failing statement is not an outage; running it
// again would fail the same way.
func TestInTxDoesNotRetryBugs(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t, 4)

	var attempts atomic.Int32
	err := database.InTx(t.Context(), pool, func(tx pgx.Tx) error {
		attempts.Add(1)
		_, err := tx.Exec(t.Context(), "SELECT * FROM no_such_table")
		return err
	})
	require.Error(t, err)
	require.NotErrorIs(t, err, apperr.ErrUnavailable)
	require.EqualValues(t, 1, attempts.Load())
}

// TestInTxOutageOutlastingTheRetry: with PostgreSQL unreachable both
// attempts fail to connect, fn never runs, and the error is an outage.
func TestInTxOutageOutlastingTheRetry(t *testing.T) {
	t.Parallel()
	pool, err := database.Open(t.Context(), "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable", 4, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	ran := false
	err = database.InTx(t.Context(), pool, func(pgx.Tx) error { ran = true; return nil })
	require.ErrorIs(t, err, apperr.ErrUnavailable)
	require.False(t, ran)
}

// TestPoolDropsDeadConnectionsAfterAnOutage: after a restart every pooled
// connection is dead. Once one statement meets that, the pool replaces the
// others instead of handing each out to fail one more request.
func TestPoolDropsDeadConnectionsAfterAnOutage(t *testing.T) {
	t.Parallel()
	dbURL := testdb.New(t)
	logs := testlog.NewSink()
	pool, err := database.Open(t.Context(), dbURL, 4, slog.New(slog.NewJSONHandler(logs, nil)))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	// Four open connections, all used within the last second, so the pool
	// does not ping them before handing them out.
	conns := make([]*pgxpool.Conn, 0, 4)
	for range 4 {
		c, err := pool.Acquire(t.Context())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	pids := make([]uint32, 0, 4)
	for _, c := range conns {
		pids = append(pids, c.Conn().PgConn().PID())
		c.Release()
	}
	for _, pid := range pids {
		terminate(t, pid)
	}
	failures := 0
	for range 8 {
		if _, err := pool.Exec(t.Context(), "SELECT 1"); err != nil {
			require.True(t, database.Unavailable(err), "%v", err)
			failures++
		}
	}
	require.Equal(t, 1, failures, "only the first statement meets a dead connection")
	// The outage is two lines at warn, its start and its end, whatever it failed.
	for _, msg := range []string{"PostgreSQL unavailable: requests that need it answer 503 until it is back", "PostgreSQL available again"} {
		lines := logs.Find(msg)
		require.Len(t, lines, 1, msg)
		require.Equal(t, "WARN", lines[0]["level"])
	}
}

// TestCancelledStatementIsNoOutage: a process stopping cancels the statements
// in flight, and pgx closes their connections; the rollback that follows
// meets a closed connection. None of that is PostgreSQL going away, so
// nothing is logged as an outage.
func TestCancelledStatementIsNoOutage(t *testing.T) {
	t.Parallel()
	logs := testlog.NewSink()
	pool, err := database.Open(t.Context(), testdb.New(t), 2, slog.New(slog.NewJSONHandler(logs, nil)))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	tx, err := pool.Begin(t.Context())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = tx.Exec(ctx, "SELECT pg_sleep(5)")
	require.Error(t, err)
	require.False(t, database.Unavailable(err), "%v", err)
	rollbackErr := tx.Rollback(context.Background())
	t.Logf("rollback after the cancel: %v", rollbackErr)
	_, err = pool.Exec(t.Context(), "SELECT 1")
	require.NoError(t, err)
	require.Empty(t, logs.Find("PostgreSQL unavailable: requests that need it answer 503 until it is back"), logs.String())
}
