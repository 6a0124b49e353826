package main

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
	"github.com/ordersvc/orders/money"
)

// TestExpiredIdempotencyKeysArePurgedInBatches: more expired keys than one
// batch are all deleted, the live ones stay, and the run is logged once.
func TestExpiredIdempotencyKeysArePurgedInBatches(t *testing.T) {
	t.Parallel()
	pool, _ := testdb.Pool(t, 4)
	q := db.New(pool)

	const expired, live = 2*keyPurgeBatch + 500, 3
	user, err := q.CreateUser(t.Context(), db.CreateUserParams{Email: "keys@example.com", PasswordHash: "x"})
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("body"))
	create := func(q *db.Queries, key string, expiresAt time.Time) {
		res := q.InsertOrderWithKey(t.Context(), []db.InsertOrderWithKeyParams{{
			ID: uuid.New(), UserID: user.ID, Items: []byte(`[]`), TotalPrice: money.MustParse("1"), CreatedAt: time.Now(),
			Key: key, Fingerprint: sum[:], Response: []byte(`{}`), ExpiresAt: expiresAt, LockTimeout: "1s",
		}})
		var err error
		res.Exec(func(_ int, e error) { err = e })
		require.NoError(t, err)
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		txq := q.WithTx(tx)
		for i := range expired {
			create(txq, fmt.Sprintf("expired-%d", i), time.Now().Add(-time.Duration(i+1)*time.Second))
		}
		return nil
	}))
	for i := range live {
		create(q, fmt.Sprintf("live-%d", i), time.Now().Add(time.Hour))
	}

	sink := testlog.NewSink()
	purgeExpiredKeys(t.Context(), q, slog.New(slog.NewJSONHandler(sink, nil)))

	left, err := q.DeleteExpiredIdempotencyKeys(t.Context(), db.DeleteExpiredIdempotencyKeysParams{Now: time.Now(), BatchSize: keyPurgeBatch})
	require.NoError(t, err)
	require.Zero(t, left, "every expired key was deleted")
	for i := range live {
		_, err := q.GetIdempotencyKey(t.Context(), db.GetIdempotencyKeyParams{UserID: user.ID, Key: fmt.Sprintf("live-%d", i)})
		require.NoError(t, err, "live key %d kept", i)
	}
	logged := sink.Find("idempotency key retention")
	require.Len(t, logged, 1, "one line per run, not per batch")
	require.EqualValues(t, expired, logged[0]["deleted"])

	quiet := testlog.NewSink()
	purgeExpiredKeys(t.Context(), q, slog.New(slog.NewJSONHandler(quiet, nil)))
	require.Empty(t, quiet.Find("idempotency key retention"), "nothing deleted, nothing logged")
}
