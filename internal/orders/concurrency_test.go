package orders

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

type patchResult struct {
	order Order
	err   error
}

// racePatches sends, for every order at once, one PATCH per target status,
// all released together by a start barrier, and returns the results indexed
// like orderIDs and targets.
func racePatches(t *testing.T, f fixture, userID int64, orderIDs []uuid.UUID, targets []Status) [][]patchResult {
	t.Helper()
	results := make([][]patchResult, len(orderIDs))
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	for i, id := range orderIDs {
		results[i] = make([]patchResult, len(targets))
		for j, target := range targets {
			ready.Add(1)
			done.Go(func() {
				ready.Done()
				<-start
				o, err := f.svc.UpdateStatus(t.Context(), userID, id, target)
				results[i][j] = patchResult{order: o, err: err}
			})
		}
	}
	ready.Wait()
	close(start)
	done.Wait()
	return results
}

// outboxEvents counts the events written to the outbox so far (no forwarder
// runs in these tests, so none has been acked).
func outboxEvents(t *testing.T, f fixture) int64 {
	t.Helper()
	backlog, err := f.queries.OutboxBacklog(t.Context())
	require.NoError(t, err)
	return backlog.Pending
}

func TestServiceConcurrentConflictingPatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)

	const n = 40
	orderIDs := make([]uuid.UUID, n)
	for i := range orderIDs {
		orderIDs[i] = f.order(t, owner, StatusPaid).ID
	}
	eventsBefore := outboxEvents(t, f)

	targets := []Status{StatusShipped, StatusCanceled}
	results := racePatches(t, f, owner, orderIDs, targets)

	wins := map[Status]int{}
	for i, id := range orderIDs {
		winner := -1
		for j, r := range results[i] {
			if r.err == nil {
				require.Equal(t, -1, winner, "order %s: both %s and %s applied", id, targets[0], targets[1])
				winner = j
				require.Equal(t, targets[j], r.order.Status, "order %s: the winner returns its own status", id)
				continue
			}
			require.ErrorIs(t, r.err, apperr.ErrConflict, "order %s: the loser (%s) must get a conflict", id, targets[j])
		}
		require.NotEqual(t, -1, winner, "order %s: neither change applied", id)
		wins[targets[winner]]++
		require.Equal(t, targets[winner], f.stored(t, id).Status, "order %s: the database holds the winner's status", id)
	}
	t.Logf("winners: %v", wins)

	// Exactly one order_status_changed event per order: the loser published nothing.
	require.Equal(t, int64(n), outboxEvents(t, f)-eventsBefore)
}

func TestServiceConcurrentIdenticalPatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)

	const n = 40
	orderIDs := make([]uuid.UUID, n)
	for i := range orderIDs {
		orderIDs[i] = f.order(t, owner).ID
	}
	eventsBefore := outboxEvents(t, f)

	results := racePatches(t, f, owner, orderIDs, []Status{StatusPaid, StatusPaid})

	for i, id := range orderIDs {
		for _, r := range results[i] {
			require.NoError(t, r.err, "order %s: setting PAID twice at once must succeed twice", id)
			require.Equal(t, StatusPaid, r.order.Status)
		}
		stored := f.stored(t, id)
		require.Equal(t, StatusPaid, stored.Status)
		// One applied the change, the other saw it committed and changed nothing:
		// both report the same, single update.
		for _, r := range results[i] {
			require.True(t, stored.UpdatedAt.Equal(r.order.UpdatedAt), "order %s: updated_at %s, stored %s", id, r.order.UpdatedAt, stored.UpdatedAt)
		}
	}

	// One change applied per order, one no-op: n events, not 2n.
	require.Equal(t, int64(n), outboxEvents(t, f)-eventsBefore)
}
