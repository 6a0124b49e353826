package orders

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
)

func ptr[T any](v T) *T { return &v }

// countOrders is how many orders userID has in the database.
func countOrders(t *testing.T, f fixture, userID int64) int {
	t.Helper()
	rows, err := f.queries.ListOrdersByUser(t.Context(), db.ListOrdersByUserParams{UserID: userID, RowLimit: 1000})
	require.NoError(t, err)
	return len(rows)
}

func TestCreateOnceReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice, bob := f.user(t), f.user(t)
	items := []Item{item(42, 2, "2.9"), item(7, 1, "10.05")}
	key := ptr("order-" + uuid.NewString())

	first, replayed, err := f.svc.CreateOnce(t.Context(), alice, key, items)
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, int64(1), first.Version)

	// The order moves on; a retry still gets the answer the first request got.
	_, err = f.svc.UpdateStatus(t.Context(), alice, first.ID, StatusPaid)
	require.NoError(t, err)
	again, replayed, err := f.svc.CreateOnce(t.Context(), alice, key, items)
	require.NoError(t, err)
	require.True(t, replayed)
	require.Equal(t, first, again)
	require.Equal(t, 1, countOrders(t, f, alice), "no second order")
	require.EqualValues(t, 2, outboxEvents(t, f), "new_order once, then order_status_changed: no second new_order")

	t.Run("the same key with other items is refused", func(t *testing.T) {
		_, _, err := f.svc.CreateOnce(t.Context(), alice, key, []Item{item(42, 3, "2.9")})
		var verr *apperr.ValidationError
		require.ErrorAs(t, err, &verr)
		require.Len(t, verr.Fields, 1)
		require.Equal(t, "header.Idempotency-Key", verr.Fields[0].Field)
		require.Contains(t, verr.Fields[0].Message, first.ID.String(), "names the order the key created")
		require.Equal(t, 1, countOrders(t, f, alice))
	})

	t.Run("another user's identical key is another request", func(t *testing.T) {
		theirs, replayed, err := f.svc.CreateOnce(t.Context(), bob, key, items)
		require.NoError(t, err)
		require.False(t, replayed)
		require.NotEqual(t, first.ID, theirs.ID)
		require.Equal(t, bob, theirs.UserID)
	})

	t.Run("no key, no promise", func(t *testing.T) {
		a, replayedA, err := f.svc.CreateOnce(t.Context(), alice, nil, items)
		require.NoError(t, err)
		b, replayedB, err := f.svc.CreateOnce(t.Context(), alice, nil, items)
		require.NoError(t, err)
		require.False(t, replayedA || replayedB)
		require.NotEqual(t, a.ID, b.ID)
	})
}

func TestCreateOnceRefusesMalformedKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.user(t)
	for name, key := range map[string]string{
		"empty":         "",
		"too long":      strings.Repeat("k", MaxKeyLength+1),
		"control":       "key\x01",
		"delete":        "key\x7f",
		"not ASCII":     "clé",
		"line break":    "key\nmore",
		"tab (not sp.)": "a\tb",
	} {
		_, _, err := f.svc.CreateOnce(t.Context(), alice, &key, []Item{item(1, 1, "1")})
		var verr *apperr.ValidationError
		require.ErrorAs(t, err, &verr, name)
		require.Equal(t, "header.Idempotency-Key", verr.Fields[0].Field, name)
	}
	for _, key := range []string{"k", strings.Repeat("~", MaxKeyLength), ` "quoted" key with spaces `} {
		_, _, err := f.svc.CreateOnce(t.Context(), alice, &key, []Item{item(1, 1, "1")})
		require.NoError(t, err, "%q", key)
	}
	require.Equal(t, 3, countOrders(t, f, alice), "only the valid keys created orders")
}

func TestCreateOnceRequiresAKeyWhenConfigured(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc := NewService(f.pool, WithIdempotencyKeys(time.Hour, true))
	alice := f.user(t)
	_, _, err := svc.CreateOnce(t.Context(), alice, nil, []Item{item(1, 1, "1")})
	var missing *apperr.MissingError
	require.ErrorAs(t, err, &missing)
	require.Equal(t, "header.Idempotency-Key", missing.Field)
	_, err = svc.Create(t.Context(), alice, []Item{item(1, 1, "1")})
	require.ErrorAs(t, err, &missing, "Create is CreateOnce without a key")
	_, _, err = svc.CreateOnce(t.Context(), alice, ptr("k"), []Item{item(1, 1, "1")})
	require.NoError(t, err)
}

// TestCreateOnceConcurrentRetries: 20 requests with one fresh key at once
// create one order and one event; each gets the order (the first, or a
// replay of it) or is told the first is still in flight.
func TestCreateOnceConcurrentRetries(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.user(t)
	key := ptr(uuid.NewString())
	items := []Item{item(1, 2, "3.5")}

	const n = 20
	type result struct {
		order    Order
		replayed bool
		err      error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			o, replayed, err := f.svc.CreateOnce(t.Context(), alice, key, items)
			results[i] = result{o, replayed, err}
		})
	}
	close(start)
	wg.Wait()

	var created, replays, inFlight int
	var id uuid.UUID
	for _, r := range results {
		switch {
		case r.err != nil:
			require.ErrorIs(t, r.err, apperr.ErrInProgress)
			inFlight++
		case r.replayed:
			replays++
		default:
			created++
		}
		if r.err == nil {
			if id == uuid.Nil {
				id = r.order.ID
			}
			require.Equal(t, id, r.order.ID, "every answer is the one order")
		}
	}
	t.Logf("%d created, %d replays, %d in flight", created, replays, inFlight)
	require.Equal(t, 1, created)
	require.Equal(t, n, created+replays+inFlight)
	require.Equal(t, 1, countOrders(t, f, alice))
	require.EqualValues(t, 1, outboxEvents(t, f), "one new_order event")
}

// insertWithKey runs InsertOrderWithKey through q (Exec reads its answer
// and closes the batch).
func insertWithKey(ctx context.Context, q *db.Queries, keyed db.InsertOrderWithKeyParams) error {
	var err error
	q.InsertOrderWithKey(ctx, []db.InsertOrderWithKeyParams{keyed}).Exec(func(_ int, e error) { err = e })
	return err
}

// holdKey creates an order with (userID, key) in a transaction it keeps
// open, as a request still in flight would; release rolls it back.
func holdKey(t *testing.T, f fixture, userID int64, key string) (release func()) {
	t.Helper()
	tx, err := f.pool.Begin(t.Context())
	require.NoError(t, err)
	o, err := f.svc.newOrder(userID, []Item{item(9, 9, "9")})
	require.NoError(t, err)
	keyed, err := f.svc.keyedCreate(key, mustJSON(t, o.Items), o)
	require.NoError(t, err)
	require.NoError(t, insertWithKey(t.Context(), f.queries.WithTx(tx), *keyed))
	var once sync.Once
	release = func() { once.Do(func() { require.NoError(t, tx.Rollback(context.Background())) }) }
	t.Cleanup(release)
	return release
}

func TestCreateOnceWhileTheKeyIsInFlight(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.user(t)
	key := uuid.NewString()
	release := holdKey(t, f, alice, key)

	began := time.Now()
	_, _, err := f.svc.CreateOnce(t.Context(), alice, &key, []Item{item(1, 1, "1")})
	waited := time.Since(began)
	require.ErrorIs(t, err, apperr.ErrInProgress)
	require.GreaterOrEqual(t, waited, keyLockWait/2, "it waited for the first request a little")
	require.Less(t, waited, keyLockWait+2*time.Second, "and not long")
	require.Equal(t, 0, countOrders(t, f, alice))

	// The first request fails: its key is free for a corrected retry.
	release()
	o, replayed, err := f.svc.CreateOnce(t.Context(), alice, &key, []Item{item(1, 1, "1")})
	require.NoError(t, err)
	require.False(t, replayed)
	require.Equal(t, alice, o.UserID)
	require.Equal(t, 1, countOrders(t, f, alice))
}

func TestCreateOnceWaitsForTheFirstToCommit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.user(t)
	key := uuid.NewString()

	// The first request is in its transaction (key taken, order written)
	// when the retry arrives; the retry waits, then replays it.
	tx, err := f.pool.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after commit
	items := []Item{item(5, 1, "1.25")}
	first, err := f.svc.newOrder(alice, items)
	require.NoError(t, err)
	keyed, err := f.svc.keyedCreate(key, mustJSON(t, items), first)
	require.NoError(t, err)
	require.NoError(t, insertWithKey(t.Context(), f.queries.WithTx(tx), *keyed))

	type result struct {
		order    Order
		replayed bool
		err      error
	}
	done := make(chan result, 1)
	go func() {
		o, replayed, err := f.svc.CreateOnce(t.Context(), alice, &key, items)
		done <- result{o, replayed, err}
	}()
	time.Sleep(keyLockWait / 5)
	require.NoError(t, tx.Commit(t.Context()))
	r := <-done
	require.NoError(t, r.err)
	require.True(t, r.replayed)
	require.Equal(t, first.ID, r.order.ID)
	require.Equal(t, 1, countOrders(t, f, alice))
}

func TestCreateOnceKeysExpire(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	clock := time.Now()
	f.svc = NewService(f.pool, WithIdempotencyKeys(time.Hour, false))
	f.svc.now = func() time.Time { return clock }
	alice := f.user(t)
	key := ptr(uuid.NewString())

	first, _, err := f.svc.CreateOnce(t.Context(), alice, key, []Item{item(1, 1, "1")})
	require.NoError(t, err)
	clock = clock.Add(59 * time.Minute)
	_, replayed, err := f.svc.CreateOnce(t.Context(), alice, key, []Item{item(1, 1, "1")})
	require.NoError(t, err)
	require.True(t, replayed, "remembered within its TTL")

	clock = clock.Add(2 * time.Minute)
	second, replayed, err := f.svc.CreateOnce(t.Context(), alice, key, []Item{item(2, 2, "2")})
	require.NoError(t, err, "after the TTL the key is free, whatever the body")
	require.False(t, replayed)
	require.NotEqual(t, first.ID, second.ID)
	again, replayed, err := f.svc.CreateOnce(t.Context(), alice, key, []Item{item(2, 2, "2")})
	require.NoError(t, err)
	require.True(t, replayed, "and remembered again for the new order")
	require.Equal(t, second.ID, again.ID)
	require.Equal(t, 2, countOrders(t, f, alice))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// TestCreateOnceBoundsOnlyTheKeyWait: the lock wait bounded by keyLockWait
// is the wait for another request's key. A keyed create that holds its key
// and then waits on another lock (the outbox table, here held by another
// transaction for longer than keyLockWait) waits and succeeds instead of
// failing. The service has one connection, whose statements are prepared
// by a first create: a statement not prepared yet would take its table's
// lock while being prepared, before the key's statement has run.
func TestCreateOnceBoundsOnlyTheKeyWait(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	alice := f.user(t)
	svc, _ := f.oneConnection(t)
	_, _, err := svc.CreateOnce(t.Context(), alice, ptr(uuid.NewString()), []Item{item(1, 1, "1")})
	require.NoError(t, err)

	tx, err := f.pool.Begin(t.Context())
	require.NoError(t, err)
	_, err = tx.Exec(t.Context(), "LOCK TABLE outbox_messages IN SHARE MODE")
	require.NoError(t, err)
	held := 2 * keyLockWait
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(held)
		_ = tx.Rollback(context.Background())
	}()
	t.Cleanup(func() { <-released })

	began := time.Now()
	o, replayed, err := svc.CreateOnce(t.Context(), alice, ptr(uuid.NewString()), []Item{item(1, 1, "1")})
	require.NoError(t, err, "a lock wait after the key is ours is not cut at keyLockWait")
	require.False(t, replayed)
	require.Equal(t, alice, o.UserID)
	require.GreaterOrEqual(t, time.Since(began), held*9/10, "it waited for the outbox lock")
	require.Equal(t, 2, countOrders(t, f, alice))
}
