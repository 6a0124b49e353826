package orders

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// fixture is a Service on its own migrated database.
type fixture struct {
	svc     *Service
	pool    *pgxpool.Pool
	queries *db.Queries
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	pool, err := database.Open(t.Context(), testdb.New(t), 16, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return fixture{svc: NewService(pool), pool: pool, queries: db.New(pool)}
}

// oneConnection is a service on a pool of one connection to f's database,
// so that a test knows which connection its next statement takes.
func (f fixture) oneConnection(t *testing.T) (*Service, *pgxpool.Pool) {
	t.Helper()
	pool, err := database.Open(t.Context(), f.pool.Config().ConnString(), 1, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return NewService(pool), pool
}

// user inserts a user (the orders' foreign key needs one) and returns its id.
func (f fixture) user(t *testing.T) int64 {
	t.Helper()
	row, err := f.queries.CreateUser(t.Context(), db.CreateUserParams{
		Email:        "user-" + uuid.NewString() + "@example.com",
		PasswordHash: "not-a-real-hash",
	})
	require.NoError(t, err)
	return row.ID
}

// order creates a PENDING order for userID and moves it along path.
func (f fixture) order(t *testing.T, userID int64, path ...Status) Order {
	t.Helper()
	o, err := f.svc.Create(t.Context(), userID, []Item{item(1, 2, "2.9")})
	require.NoError(t, err)
	for _, s := range path {
		o, err = f.svc.UpdateStatus(t.Context(), userID, o.ID, s)
		require.NoError(t, err)
	}
	return o
}

// stored reads the order as it is in the database, bypassing the ownership check.
func (f fixture) stored(t *testing.T, id uuid.UUID) db.Order {
	t.Helper()
	row, err := f.queries.GetOrder(t.Context(), id)
	require.NoError(t, err)
	return row
}

func TestServiceCreateAndGet(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	owner, other := f.user(t), f.user(t)

	items := []Item{item(42, 3, "0.1"), item(7, 1, "0.2")}
	created, err := f.svc.Create(ctx, owner, items)
	require.NoError(t, err)
	require.Equal(t, uuid.Version(7), created.ID.Version())
	require.Equal(t, owner, created.UserID)
	require.Equal(t, items, created.Items)
	require.Equal(t, "0.5", created.TotalPrice.String())
	require.Equal(t, StatusPending, created.Status)
	require.WithinDuration(t, time.Now(), created.CreatedAt, time.Minute)
	require.True(t, created.UpdatedAt.Equal(created.CreatedAt))
	require.Nil(t, created.ProcessedAt)

	t.Run("owner reads it back", func(t *testing.T) {
		got, err := f.svc.Get(ctx, owner, created.ID)
		require.NoError(t, err)
		require.Equal(t, created.ID, got.ID)
		require.Equal(t, items, got.Items)
		require.Equal(t, created.TotalPrice, got.TotalPrice)
		require.Equal(t, StatusPending, got.Status)
		require.True(t, created.CreatedAt.Equal(got.CreatedAt))
		require.True(t, created.UpdatedAt.Equal(got.UpdatedAt))
		require.Nil(t, got.ProcessedAt)
	})

	t.Run("stored exactly", func(t *testing.T) {
		row := f.stored(t, created.ID)
		require.Equal(t, "0.5", row.TotalPrice.String())
		var stored []map[string]json.Number
		dec := json.NewDecoder(bytes.NewReader(row.Items))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&stored))
		require.Len(t, stored, 2)
		require.Equal(t, json.Number("0.1"), stored[0]["price"], "price kept as a plain decimal: %s", row.Items)
		require.Equal(t, json.Number("0.2"), stored[1]["price"])
	})

	t.Run("another user is forbidden", func(t *testing.T) {
		_, err := f.svc.Get(ctx, other, created.ID)
		require.ErrorIs(t, err, apperr.ErrForbidden)
		require.NotErrorIs(t, err, apperr.ErrNotFound)
	})

	t.Run("unknown id is not found", func(t *testing.T) {
		_, err := f.svc.Get(ctx, owner, uuid.New())
		require.ErrorIs(t, err, apperr.ErrNotFound)
	})
}

func TestServiceCreateInvalid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)

	tests := []struct {
		name  string
		items []Item
		field string
	}{
		{"no items", nil, "body.items"},
		{"too many items", slices.Repeat([]Item{item(1, 1, "1")}, MaxItems+1), "body.items"},
		{"quantity zero", []Item{item(1, 0, "1")}, "body.items[0].quantity"},
		{"quantity too large", []Item{item(1, MaxQuantity+1, "1")}, "body.items[0].quantity"},
		{"price zero", []Item{item(1, 1, "0")}, "body.items[0].price"},
		{"price over max", []Item{item(1, 1, "1000000.01")}, "body.items[0].price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.Create(t.Context(), owner, tt.items)
			require.ErrorIs(t, err, apperr.ErrInvalid)
			var verr *apperr.ValidationError
			require.ErrorAs(t, err, &verr)
			require.NotEmpty(t, verr.Fields)
			require.Equal(t, tt.field, verr.Fields[0].Field)
		})
	}

	page, err := f.svc.List(t.Context(), owner, owner, ListQuery{Limit: 100})
	require.NoError(t, err)
	require.Empty(t, page.Orders, "an invalid order must not be stored")
}

func TestServiceCreateUnknownUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, err := f.svc.Create(t.Context(), 987654321, []Item{item(1, 1, "1")})
	require.Error(t, err, "the users foreign key must refuse an order of nobody")
	require.NotErrorIs(t, err, apperr.ErrInvalid)
}

func TestServiceUpdateStatus(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)

	// How to reach each status from PENDING.
	reach := map[Status][]Status{
		StatusPending:  nil,
		StatusPaid:     {StatusPaid},
		StatusShipped:  {StatusPaid, StatusShipped},
		StatusCanceled: {StatusCanceled},
	}
	allowed := map[[2]Status]bool{
		{StatusPending, StatusPaid}:     true,
		{StatusPending, StatusCanceled}: true,
		{StatusPaid, StatusShipped}:     true,
		{StatusPaid, StatusCanceled}:    true,
	}
	for _, from := range allStatuses() {
		for _, to := range allStatuses() {
			t.Run(string(from)+"->"+string(to), func(t *testing.T) {
				t.Parallel()
				before := f.order(t, owner, reach[from]...)
				require.Equal(t, from, before.Status)
				beforeRow := f.stored(t, before.ID)

				got, err := f.svc.UpdateStatus(t.Context(), owner, before.ID, to)
				after := f.stored(t, before.ID)
				switch {
				case from == to: // no-op: succeeds, changes nothing
					require.NoError(t, err)
					require.Equal(t, from, got.Status)
					require.Equal(t, from, after.Status)
					require.True(t, beforeRow.UpdatedAt.Equal(after.UpdatedAt), "updated_at moved on a no-op")
					require.True(t, beforeRow.UpdatedAt.Equal(got.UpdatedAt))
				case allowed[[2]Status{from, to}]:
					require.NoError(t, err)
					require.Equal(t, to, got.Status)
					require.Equal(t, to, after.Status)
					require.True(t, after.UpdatedAt.After(beforeRow.UpdatedAt), "updated_at %s not after %s", after.UpdatedAt, beforeRow.UpdatedAt)
					require.True(t, after.UpdatedAt.Equal(got.UpdatedAt))
					require.True(t, after.CreatedAt.Equal(beforeRow.CreatedAt))
					require.Equal(t, before.Items, got.Items)
					require.Equal(t, before.TotalPrice, got.TotalPrice)
				default:
					require.ErrorIs(t, err, apperr.ErrConflict)
					var conflict *apperr.ConflictError
					require.ErrorAs(t, err, &conflict)
					require.Contains(t, conflict.Detail, string(from))
					require.Contains(t, conflict.Detail, string(to))
					require.Equal(t, from, after.Status, "a refused change must not apply")
					require.True(t, beforeRow.UpdatedAt.Equal(after.UpdatedAt))
				}
			})
		}
	}
}

func TestServiceUpdateStatusErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner, other := f.user(t), f.user(t)

	tests := []struct {
		name    string
		caller  int64
		status  Status
		unknown bool // use an id that does not exist
		want    error
	}{
		{name: "another user", caller: other, status: StatusPaid, want: apperr.ErrForbidden},
		{name: "another user asking for the current status", caller: other, status: StatusPending, want: apperr.ErrForbidden},
		{name: "another user, forbidden transition", caller: other, status: StatusShipped, want: apperr.ErrForbidden},
		{name: "unknown order", caller: owner, status: StatusPaid, unknown: true, want: apperr.ErrNotFound},
		{name: "unknown order, same status", caller: owner, status: StatusPending, unknown: true, want: apperr.ErrNotFound},
		{name: "unknown status", caller: owner, status: "LOST", want: apperr.ErrInvalid},
		{name: "empty status", caller: owner, status: "", want: apperr.ErrInvalid},
		{name: "lower-case status", caller: owner, status: "paid", want: apperr.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := f.order(t, owner)
			id := o.ID
			if tt.unknown {
				id = uuid.New()
			}
			_, err := f.svc.UpdateStatus(t.Context(), tt.caller, id, tt.status)
			require.ErrorIs(t, err, tt.want)
			after := f.stored(t, o.ID)
			require.Equal(t, StatusPending, after.Status)
			require.True(t, o.UpdatedAt.Equal(after.UpdatedAt))
			if errors.Is(tt.want, apperr.ErrInvalid) {
				var verr *apperr.ValidationError
				require.ErrorAs(t, err, &verr)
				require.Equal(t, "body.status", verr.Fields[0].Field)
			}
		})
	}
}

// byNewest orders like the API: created_at descending, then id descending
// (PostgreSQL compares uuids bytewise).
func byNewest(a, b Order) int {
	if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(b.ID[:], a.ID[:])
}

func ids(orders []Order) []uuid.UUID {
	out := make([]uuid.UUID, len(orders))
	for i, o := range orders {
		out[i] = o.ID
	}
	return out
}

// walk lists every page of ownerID's orders and returns them with the page sizes.
func walk(t *testing.T, svc *Service, ownerID int64, q ListQuery) ([]Order, []int) {
	t.Helper()
	var all []Order
	var sizes []int
	for range 1000 {
		page, err := svc.List(t.Context(), ownerID, ownerID, q)
		require.NoError(t, err)
		all = append(all, page.Orders...)
		sizes = append(sizes, len(page.Orders))
		if page.Next == "" {
			return all, sizes
		}
		require.NotEqual(t, q.Cursor, page.Next, "cursor did not advance")
		q.Cursor = page.Next
	}
	t.Fatal("pagination did not end")
	return nil, nil
}

func TestServiceListPagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner, other := f.user(t), f.user(t)

	var want []Order
	for range 7 {
		want = append(want, f.order(t, owner))
	}
	f.order(t, other)
	f.order(t, other)
	slices.SortFunc(want, byNewest)

	tests := []struct {
		limit int
		sizes []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1, 1}},
		{2, []int{2, 2, 2, 1}},
		{3, []int{3, 3, 1}},
		{6, []int{6, 1}},
		{7, []int{7}}, // exactly one full page: no cursor to an empty page
		{8, []int{7}},
		{100, []int{7}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			t.Parallel()
			got, sizes := walk(t, f.svc, owner, ListQuery{Limit: tt.limit})
			require.Equal(t, tt.sizes, sizes)
			require.Equal(t, ids(want), ids(got), "newest first, each order once, only the owner's")
		})
	}
}

func TestServiceListSameCreatedAt(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)

	// Orders created in the same microsecond are ordered by id, and a page
	// boundary between them neither repeats nor skips one.
	at := time.Now().UTC().Truncate(time.Microsecond)
	itemsJSON, err := json.Marshal([]Item{item(1, 1, "1")})
	require.NoError(t, err)
	var want []Order
	for range 5 {
		row, err := f.queries.CreateOrder(t.Context(), db.CreateOrderParams{
			ID: uuid.New(), UserID: owner, Items: itemsJSON, TotalPrice: item(1, 1, "1").Price, CreatedAt: at,
		})
		require.NoError(t, err)
		o, err := fromRow(row)
		require.NoError(t, err)
		want = append(want, o)
	}
	slices.SortFunc(want, byNewest)

	for _, limit := range []int{1, 2, 4} {
		got, _ := walk(t, f.svc, owner, ListQuery{Limit: limit})
		require.Equal(t, ids(want), ids(got), "limit %d", limit)
	}
}

func TestServiceListCursorIsStable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)

	var want []Order
	for range 4 {
		want = append(want, f.order(t, owner))
	}
	slices.SortFunc(want, byNewest)

	first, err := f.svc.List(t.Context(), owner, owner, ListQuery{Limit: 2})
	require.NoError(t, err)
	require.NotEmpty(t, first.Next)

	// A new order between two page requests belongs before the first page: the
	// next page continues where the previous one ended.
	f.order(t, owner)
	rest, _ := walk(t, f.svc, owner, ListQuery{Limit: 2, Cursor: first.Next})
	require.Equal(t, ids(want), ids(append(first.Orders, rest...)))
}

func TestServiceListStatusFilter(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner, other := f.user(t), f.user(t)

	byStatus := map[Status][]Order{}
	for _, path := range [][]Status{
		nil, nil,
		{StatusPaid}, {StatusPaid}, {StatusPaid},
		{StatusPaid, StatusShipped},
		{StatusCanceled},
	} {
		o := f.order(t, owner, path...)
		byStatus[o.Status] = append(byStatus[o.Status], o)
	}
	f.order(t, other, StatusPaid) // another user's PAID order must not show up

	for _, status := range allStatuses() {
		t.Run(string(status), func(t *testing.T) {
			t.Parallel()
			want := slices.Clone(byStatus[status])
			slices.SortFunc(want, byNewest)
			got, _ := walk(t, f.svc, owner, ListQuery{Limit: 2, Status: &status})
			require.Equal(t, ids(want), ids(got))
			for _, o := range got {
				require.Equal(t, status, o.Status)
			}
		})
	}

	t.Run("no filter", func(t *testing.T) {
		t.Parallel()
		got, _ := walk(t, f.svc, owner, ListQuery{Limit: 3})
		require.Len(t, got, 7)
	})

	t.Run("no match is an empty page", func(t *testing.T) {
		t.Parallel()
		fresh := f.user(t)
		page, err := f.svc.List(t.Context(), fresh, fresh, ListQuery{Limit: 10})
		require.NoError(t, err)
		require.NotNil(t, page.Orders, "an empty list, not null")
		require.Empty(t, page.Orders)
		require.Empty(t, page.Next)
	})
}

func TestServiceListForbidden(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner, other := f.user(t), f.user(t)
	f.order(t, owner)

	_, err := f.svc.List(t.Context(), other, owner, ListQuery{Limit: 10})
	require.ErrorIs(t, err, apperr.ErrForbidden)
}

func TestListRejectsLimitOutOfRange(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{0, -1, MaxPageSize + 1} {
		_, err := (&Service{}).List(t.Context(), 1, 1, ListQuery{Limit: limit})
		require.ErrorIs(t, err, apperr.ErrInvalid, "limit %d", limit)
	}
}

// TestCreateWritesTheOrderAndItsEventTogether: with and without an
// idempotency key, a create stores its order and one new_order event, or,
// when the event cannot be written, neither.
func TestCreateWritesTheOrderAndItsEventTogether(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	owner := f.user(t)
	events := func() int {
		var n int
		require.NoError(t, f.pool.QueryRow(ctx, "SELECT count(*) FROM outbox_messages").Scan(&n))
		return n
	}
	create := func(keyed bool) error {
		var key *string
		if keyed {
			key = ptr(uuid.NewString())
		}
		_, _, err := f.svc.CreateOnce(ctx, owner, key, []Item{item(1, 1, "1")})
		return err
	}

	for _, keyed := range []bool{false, true} {
		before := events()
		require.NoError(t, create(keyed))
		require.Equal(t, before+1, events(), "keyed %t: one event per order", keyed)
	}
	require.Equal(t, 2, countOrders(t, f, owner))

	_, err := f.pool.Exec(ctx, "ALTER TABLE outbox_messages ADD CONSTRAINT refuse_events CHECK (false) NOT VALID")
	require.NoError(t, err)
	for _, keyed := range []bool{false, true} {
		require.Error(t, create(keyed), "keyed %t: the event is refused", keyed)
	}
	require.Equal(t, 2, countOrders(t, f, owner), "no order without its event")
	require.Equal(t, 2, events())
}

// TestCreateAfterItsConnectionWasTerminated: a pooled connection whose
// backend was terminated (as a PostgreSQL restart does to every session)
// fails the first statement sent on it, with PostgreSQL's own FATAL; the
// create is sent again on a new connection and succeeds, once.
func TestCreateAfterItsConnectionWasTerminated(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)
	svc, pool := f.oneConnection(t)
	_, err := svc.Create(t.Context(), owner, []Item{item(1, 1, "1")})
	require.NoError(t, err)

	var pid uint32
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&pid))
	var terminated bool
	require.NoError(t, f.pool.QueryRow(t.Context(), "SELECT pg_terminate_backend($1, 5000)", pid).Scan(&terminated))
	require.True(t, terminated)

	_, err = svc.Create(t.Context(), owner, []Item{item(1, 1, "1")})
	require.NoError(t, err, "sent again on a new connection")
	require.Equal(t, 2, countOrders(t, f, owner))
	var events int
	require.NoError(t, f.pool.QueryRow(t.Context(), "SELECT count(*) FROM outbox_messages").Scan(&events))
	require.Equal(t, 2, events)
}
