package testdb

import (
	"log/slog"
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
