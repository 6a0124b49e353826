package main

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/messaging"
)

// Many handlers at once, each task delivered twice at the same moment, plus
// tasks for orders that do not exist: every order is processed once, each
// task is applied by exactly one of its deliveries, and the tasks were
// written in fewer transactions than there were tasks.
func TestGroupCommitAppliesEachTaskOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 120
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = e.createOrder().ID
	}
	var groups, written atomic.Int64
	g := &groupCommit{queries: db.New(e.pool), timeout: 10 * time.Second, handler: messaging.ProcessOrderHandler, written: func(size int) {
		groups.Add(1)
		written.Add(int64(size))
	}}

	type outcome struct {
		first, missing bool
		err            error
	}
	results := make([][2]outcome, n)
	var missing [4]outcome
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		for d := range 2 {
			wg.Go(func() {
				<-start
				row, err := g.mark(context.Background(), id, "task-"+id.String())
				results[i][d] = outcome{first: row != nil && row.First, missing: row == nil, err: err}
			})
		}
	}
	for i := range missing {
		wg.Go(func() {
			<-start
			row, err := g.mark(context.Background(), uuid.New(), uuid.NewString())
			missing[i] = outcome{missing: row == nil, err: err}
		})
	}
	close(start)
	wg.Wait()

	for i, r := range results {
		require.NoError(t, r[0].err)
		require.NoError(t, r[1].err)
		require.False(t, r[0].missing || r[1].missing, "order %d exists", i)
		require.NotEqual(t, r[0].first, r[1].first, "order %d: exactly one delivery applies the task, got %v and %v", i, r[0].first, r[1].first)
	}
	for _, m := range missing {
		require.NoError(t, m.err)
		require.True(t, m.missing, "a task for an order that does not exist gets no row")
	}

	var processed, inbox int
	require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT count(*) FROM orders WHERE processed_at IS NOT NULL").Scan(&processed))
	require.NoError(t, e.pool.QueryRow(t.Context(), "SELECT count(*) FROM processed_messages").Scan(&inbox))
	require.Equal(t, n, processed)
	require.Equal(t, n, inbox, "tasks for missing orders leave no inbox row, so a replay can still apply")
	require.Equal(t, int64(2*n+len(missing)), written.Load(), "every request was written")
	require.Less(t, groups.Load(), int64(2*n+len(missing)), "concurrent tasks share transactions")
	t.Logf("%d tasks in %d groups", written.Load(), groups.Load())
}

// A failing statement answers every task of its group with the error, and
// the next group starts afresh.
func TestGroupCommitReportsErrorsToTheGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.createOrder()
	g := &groupCommit{queries: db.New(e.pool), timeout: 10 * time.Second, handler: messaging.ProcessOrderHandler, written: func(int) {}}

	_, err := e.pool.Exec(t.Context(), "ALTER TABLE processed_messages RENAME TO processed_messages_away")
	require.NoError(t, err)
	_, err = g.mark(context.Background(), o.ID, "task-1")
	require.Error(t, err)

	_, err = e.pool.Exec(t.Context(), "ALTER TABLE processed_messages_away RENAME TO processed_messages")
	require.NoError(t, err)
	row, err := g.mark(context.Background(), o.ID, "task-1")
	require.NoError(t, err)
	require.NotNil(t, row)
	require.True(t, row.First, "the failed attempt recorded nothing")
	require.NotNil(t, row.ProcessedAt)
}
