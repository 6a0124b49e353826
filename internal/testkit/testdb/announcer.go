package testdb

import (
	"context"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/internal/outbox"
)

// Announcer runs an outbox announcer on pool, as the API does, until t
// ends: a test that creates orders through the orders service with it
// wakes the forwarders as the API would.
func Announcer(t testing.TB, pool *pgxpool.Pool) *outbox.Announcer {
	t.Helper()
	a := outbox.NewAnnouncer(pool, slog.New(slog.DiscardHandler))
	t.Cleanup(a.Start(context.Background()))
	return a
}
