package main

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testdb"
	"github.com/ordersvc/orders/internal/testlog"
)

// TestExpiredIdempotencyKeysArePurgedInBatches: more expired keys than one
// batch are all deleted, the live ones stay, and the run is logged once.
func TestExpiredIdempotencyKeysArePurgedInBatches(t *testing.T) {
	t.Parallel()
	pool, err := database.Open(t.Context(), testdb.New(t), 4)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	q := db.New(pool)

	const expired, live = 2*keyPurgeBatch + 500, 3
	sum := sha256.Sum256([]byte("body"))
	claim := func(q *db.Queries, userID int64, key string, expiresAt time.Time) {
		n, err := q.ClaimIdempotencyKey(t.Context(), db.ClaimIdempotencyKeyParams{
			UserID: userID, Key: key, Fingerprint: sum[:], OrderID: uuid.New(), Response: []byte(`{}`),
			ExpiresAt: expiresAt, LockTimeout: "1s",
		})
		require.NoError(t, err)
		require.EqualValues(t, 1, n)
	}
	require.NoError(t, pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		txq := q.WithTx(tx)
		for i := range expired {
			claim(txq, int64(i%7+1), fmt.Sprintf("expired-%d", i), time.Now().Add(-time.Duration(i+1)*time.Second))
		}
		return nil
	}))
	for i := range live {
		claim(q, 1, fmt.Sprintf("live-%d", i), time.Now().Add(time.Hour))
	}

	sink := testlog.NewSink()
	purgeExpiredKeys(t.Context(), q, slog.New(slog.NewJSONHandler(sink, nil)))

	left, err := q.DeleteExpiredIdempotencyKeys(t.Context(), db.DeleteExpiredIdempotencyKeysParams{Now: time.Now(), BatchSize: keyPurgeBatch})
	require.NoError(t, err)
	assert.Zero(t, left, "every expired key was deleted")
	for i := range live {
		_, err := q.GetIdempotencyKey(t.Context(), db.GetIdempotencyKeyParams{UserID: 1, Key: fmt.Sprintf("live-%d", i)})
		assert.NoError(t, err, "live key %d kept", i)
	}
	logged := sink.Find("idempotency key retention")
	require.Len(t, logged, 1, "one line per run, not per batch")
	assert.EqualValues(t, expired, logged[0]["deleted"])

	quiet := testlog.NewSink()
	purgeExpiredKeys(t.Context(), q, slog.New(slog.NewJSONHandler(quiet, nil)))
	assert.Empty(t, quiet.Find("idempotency key retention"), "nothing deleted, nothing logged")
}
