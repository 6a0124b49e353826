package outbox_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/outbox"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// listener is a session listening on the forwarders' channel.
func listener(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	require.NoError(t, db.New(conn).ListenForOutbox(t.Context()))
	return conn
}

// notifications counts what conn receives until nothing more comes for quiet.
func notifications(t *testing.T, conn *pgx.Conn, quiet time.Duration) int {
	t.Helper()
	n := 0
	for {
		ctx, cancel := context.WithTimeout(t.Context(), quiet)
		_, err := conn.WaitForNotification(ctx)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return n
		}
		n++
	}
}

// TestAnnouncerWakesOncePerGap: a commit after a quiet spell is announced
// at once; a burst of commits is announced a few times, not once per
// commit; a committed transaction that nobody announces (the order's own)
// sends nothing, so that orders' commits never wait on the notification
// lock.
func TestAnnouncerWakesOncePerGap(t *testing.T) {
	t.Parallel()
	pool, dbURL := testdb.Pool(t, 4)
	conn := listener(t, dbURL)
	a := testdb.Announcer(t, pool)

	// An outbox row committed without an announcement: no notification.
	tx, err := pool.Begin(t.Context())
	require.NoError(t, err)
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after the commit
	require.NoError(t, outbox.Publish(tx, "new_order", message.NewMessage(watermill.NewUUID(), []byte(`{}`))))
	require.NoError(t, tx.Commit(t.Context()))
	require.Zero(t, notifications(t, conn, 200*time.Millisecond), "the commit itself notifies nobody")

	// One commit, announced: one wake-up, at once.
	start := time.Now()
	a.Committed()
	_, err = conn.WaitForNotification(t.Context())
	require.NoError(t, err)
	t.Logf("announced %s after Committed", time.Since(start).Round(10*time.Microsecond))
	require.Less(t, time.Since(start), 500*time.Millisecond)
	require.Zero(t, notifications(t, conn, 100*time.Millisecond))

	// 1,000 commits from 8 goroutines within a few milliseconds: at most
	// one announcement per gap, at least one after the last commit.
	var wg sync.WaitGroup
	start = time.Now()
	for range 8 {
		wg.Go(func() {
			for range 125 {
				a.Committed()
			}
		})
	}
	wg.Wait()
	burst := time.Since(start)
	got := notifications(t, conn, 200*time.Millisecond)
	t.Logf("1,000 commits over %s: %d announcements", burst.Round(time.Microsecond), got)
	require.GreaterOrEqual(t, got, 1)
	require.LessOrEqual(t, got, int(burst/outbox.AnnounceGap)+2)
}
