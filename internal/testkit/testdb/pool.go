package testdb

import (
	"log/slog"
	"net/url"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/internal/database"
)

// Pool opens the service's pool, of at most conns connections and with its
// logs discarded, on a new migrated database (New), closed when t ends. It
// returns the database's URL too, for what needs a connection of its own.
func Pool(t testing.TB, conns int) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL := New(t)
	pool, err := database.Open(t.Context(), dbURL, conns, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open a pool on the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, dbURL
}

// Idle settings of the pools of the processes tests start. A package keeps
// many servers alive at once (a parallel test's server lives until it ends,
// while other tests run), and the packages run side by side, all on the one
// PostgreSQL of 100 connections: a pool that closes its idle connections
// within a few seconds holds them only while a test uses them.
const (
	testPoolIdleTime    = "2s"
	testPoolHealthCheck = "1s"
)

// ProcessEnv sets, in a test process's environment, DATABASE_URL to dbURL
// with pgxpool's idle settings above and MIGRATION_DATABASE_URL to dbURL
// itself (migrations, LISTEN and /ready use a plain connection, which would
// pass pool settings on to the server as run-time parameters). An
// environment that names MIGRATION_DATABASE_URL already (a DATABASE_URL
// through PgBouncer, say) is left as it is.
func ProcessEnv(env map[string]string) {
	dbURL, ok := env["DATABASE_URL"]
	if _, direct := env["MIGRATION_DATABASE_URL"]; !ok || direct {
		return
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return // the process reports the bad URL itself
	}
	q := u.Query()
	q.Set("pool_max_conn_idle_time", testPoolIdleTime)
	q.Set("pool_health_check_period", testPoolHealthCheck)
	u.RawQuery = q.Encode()
	env["MIGRATION_DATABASE_URL"] = dbURL
	env["DATABASE_URL"] = u.String()
}
