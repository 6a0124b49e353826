package orders

import (
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
)

// processOrder does to the order what the workers' task handler does.
func processOrder(t *testing.T, f fixture, id uuid.UUID, messageID string) {
	t.Helper()
	_, err := f.queries.ProcessOrdersOnce(t.Context(), db.ProcessOrdersOnceParams{
		OrderIds: []uuid.UUID{id}, Handler: "process_order", MessageIds: []string{messageID},
	})
	require.NoError(t, err)
}

// processed creates an order for userID, moves it along path and processes
// it as the workers would; it returns the order as stored.
func (f fixture) processed(t *testing.T, userID int64, path ...Status) Order {
	t.Helper()
	o := f.order(t, userID, path...)
	processOrder(t, f, o.ID, "task-"+o.ID.String())
	o, err := fromRow(f.stored(t, o.ID))
	require.NoError(t, err)
	return o
}

func TestEveryWriteIncrementsTheVersion(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)
	o := f.order(t, owner)
	require.Equal(t, int64(1), o.Version)
	require.Equal(t, int64(1), f.stored(t, o.ID).Version, "the row agrees with the answer")

	paid, err := f.svc.UpdateStatus(t.Context(), owner, o.ID, StatusPaid)
	require.NoError(t, err)
	require.Equal(t, int64(2), paid.Version)

	same, err := f.svc.UpdateStatus(t.Context(), owner, o.ID, StatusPaid)
	require.NoError(t, err)
	require.Equal(t, int64(2), same.Version, "a no-op change writes nothing")

	_, err = f.svc.UpdateStatus(t.Context(), owner, o.ID, StatusPending)
	require.ErrorIs(t, err, apperr.ErrConflict)
	require.Equal(t, int64(2), f.stored(t, o.ID).Version, "a refused change writes nothing")

	processOrder(t, f, o.ID, "task-1")
	require.Equal(t, int64(3), f.stored(t, o.ID).Version, "processing changes processed_at: a new version")
	processOrder(t, f, o.ID, "task-1")
	processOrder(t, f, o.ID, "task-2")
	require.Equal(t, int64(3), f.stored(t, o.ID).Version, "a redelivered or second task changes nothing")

	got, err := f.svc.Get(t.Context(), owner, o.ID)
	require.NoError(t, err)
	require.Equal(t, int64(3), got.Version)
}

func TestUpdateStatusIf(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner, other := f.user(t), f.user(t)

	versions := func(v ...int64) *Precondition { return &Precondition{Versions: v} }
	cases := []struct {
		name    string
		path    []Status // moves before the conditional change (each a new version)
		caller  int64
		id      *uuid.UUID
		to      Status
		ifMatch *Precondition
		want    error // nil: applied (or a no-op)
	}{
		{name: "current version", to: StatusPaid, ifMatch: versions(1)},
		{name: "one of several", path: []Status{StatusPaid}, to: StatusShipped, ifMatch: versions(7, 2, 9)},
		{name: "any version", path: []Status{StatusPaid}, to: StatusShipped, ifMatch: &Precondition{Any: true}},
		{name: "stale version", path: []Status{StatusPaid}, to: StatusShipped, ifMatch: versions(1), want: apperr.ErrPreconditionFailed},
		{name: "no version parsed", to: StatusPaid, ifMatch: &Precondition{}, want: apperr.ErrPreconditionFailed},
		{name: "stale wins over a no-op", path: []Status{StatusPaid}, to: StatusPaid, ifMatch: versions(1), want: apperr.ErrPreconditionFailed},
		{name: "stale wins over a conflict", path: []Status{StatusCanceled}, to: StatusPaid, ifMatch: versions(1), want: apperr.ErrPreconditionFailed},
		{name: "current, but a conflict", path: []Status{StatusCanceled}, to: StatusPaid, ifMatch: versions(2), want: apperr.ErrConflict},
		{name: "another user's order", caller: other, to: StatusPaid, ifMatch: versions(1), want: apperr.ErrForbidden},
		{name: "another user's, any", caller: other, to: StatusPaid, ifMatch: &Precondition{Any: true}, want: apperr.ErrForbidden},
		{name: "no such order", id: ptr(uuid.New()), to: StatusPaid, ifMatch: &Precondition{Any: true}, want: apperr.ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := f.order(t, owner, tc.path...)
			id, caller := o.ID, owner
			if tc.id != nil {
				id = *tc.id
			}
			if tc.caller != 0 {
				caller = tc.caller
			}
			got, err := f.svc.UpdateStatusIf(t.Context(), caller, id, tc.to, tc.ifMatch)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
				row := f.stored(t, o.ID)
				require.Equal(t, o.Status, row.Status, "nothing changed")
				require.Equal(t, o.Version, row.Version, "nothing changed")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.to, got.Status)
			require.Equal(t, o.Version+1, got.Version)
			require.Equal(t, got.Version, f.stored(t, o.ID).Version)
		})
	}
}

func TestUpdateStatusIfRequired(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	svc := NewService(f.pool, WithRequiredIfMatch(true))
	owner := f.user(t)
	o := f.order(t, owner)

	_, err := svc.UpdateStatus(t.Context(), owner, o.ID, StatusPaid)
	require.ErrorIs(t, err, apperr.ErrPreconditionRequired)
	require.Equal(t, StatusPending, f.stored(t, o.ID).Status)
	_, err = svc.UpdateStatusIf(t.Context(), owner, o.ID, StatusPaid, &Precondition{Any: true})
	require.NoError(t, err)
}

// TestConcurrentPatchesWithOneIfMatch: clients that read the same version
// and change the order at once: exactly one change applies, the others are
// told the order has changed, whatever status each asked for.
func TestConcurrentPatchesWithOneIfMatch(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)
	for round := range 10 {
		o := f.order(t, owner)
		targets := []Status{StatusPaid, StatusPaid, StatusCanceled, StatusPaid}
		errs := make([]error, len(targets))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, to := range targets {
			wg.Go(func() {
				<-start
				_, errs[i] = f.svc.UpdateStatusIf(t.Context(), owner, o.ID, to, &Precondition{Versions: []int64{o.Version}})
			})
		}
		close(start)
		wg.Wait()
		applied := 0
		for _, err := range errs {
			if err == nil {
				applied++
				continue
			}
			require.ErrorIs(t, err, apperr.ErrPreconditionFailed, "round %d", round)
		}
		require.Equal(t, 1, applied, "round %d", round)
		require.Equal(t, int64(2), f.stored(t, o.ID).Version, "round %d", round)
	}
	require.EqualValues(t, 20, outboxEvents(t, f), "10 new_order and 10 order_status_changed events: one change per order")
}
