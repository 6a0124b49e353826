package database_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/money"
)

// twoClientsOneServer opens two client connections through a PgBouncer that
// has one server connection, so that both run their statements on the same
// PostgreSQL session, as busy clients of a transaction pooler do.
func twoClientsOneServer(t *testing.T, bouncerURL string) (*db.Queries, *db.Queries) {
	t.Helper()
	pool, err := database.Open(t.Context(), bouncerURL, 2, quiet())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	first, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	t.Cleanup(first.Release)
	second, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	t.Cleanup(second.Release)
	return db.New(first), db.New(second)
}

// TestPgxDefaultQueryModeBreaksBehindPgBouncer shows why the setting
// exists: pgx's default caches named prepared statements per client
// connection, and behind a transaction pooler the session that holds them is
// shared with other clients.
func TestPgxDefaultQueryModeBreaksBehindPgBouncer(t *testing.T) {
	t.Parallel()
	bouncer := testdb.StartPgBouncer(t, testdb.New(t), 1)
	first, second := twoClientsOneServer(t, bouncer.URL(""))

	_, err := first.GetOrder(t.Context(), uuid.New())
	require.ErrorIs(t, err, pgx.ErrNoRows)
	_, err = second.GetOrder(t.Context(), uuid.New())
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the second client prepares the same statement name on the same session")
	require.Equal(t, "42P05", pgErr.Code, "duplicate_prepared_statement: %s", pgErr.Message)
	require.Contains(t, pgErr.Message, `prepared statement "stmtcache_`)
}

// TestCacheDescribeWorksBehindPgBouncer runs the queries of an order's life
// (user, insert, read, list, status change, the inbox) from two clients
// sharing one server session, in the mode README names for a transaction
// pooler: descriptions are cached, statements are unnamed.
func TestCacheDescribeWorksBehindPgBouncer(t *testing.T) {
	t.Parallel()
	bouncer := testdb.StartPgBouncer(t, testdb.New(t), 1)
	first, second := twoClientsOneServer(t, bouncer.URL("cache_describe"))
	for i, q := range []*db.Queries{first, second, first, second} {
		exerciseOrderQueries(t, q, int64(i))
	}
}

// TestTextQueryModesCannotEncodeOurQueries: exec and simple_protocol, the
// other single-round-trip modes, infer parameter types from Go types and
// have none for a []uuid.UUID, which the inbox query takes; this is why the
// configuration refuses them.
func TestTextQueryModesCannotEncodeOurQueries(t *testing.T) {
	t.Parallel()
	dbURL := testdb.New(t)
	for _, mode := range []string{"exec", "simple_protocol"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			pool, err := database.Open(t.Context(), dbURL+"&default_query_exec_mode="+mode, 1, quiet())
			require.NoError(t, err)
			t.Cleanup(pool.Close)
			_, err = db.New(pool).ProcessOrdersOnce(t.Context(), db.ProcessOrdersOnceParams{
				OrderIds: []uuid.UUID{uuid.New()}, MessageIds: []string{"m"}, Handler: "process_order",
			})
			require.ErrorContains(t, err, "unable to encode []uuid.UUID")
		})
	}
}

func exerciseOrderQueries(t *testing.T, q *db.Queries, n int64) {
	t.Helper()
	ctx := t.Context()
	user, err := q.CreateUser(ctx, db.CreateUserParams{Email: uuid.NewString() + "@example.com", PasswordHash: "x"})
	require.NoError(t, err)
	price, err := money.Parse("5.80")
	require.NoError(t, err)
	items := json.RawMessage(fmt.Sprintf(`[{"product_id": %d, "quantity": 2, "price": 2.9}]`, n))
	created, err := q.CreateOrder(ctx, db.CreateOrderParams{ID: uuid.New(), UserID: user.ID, Items: items, TotalPrice: price, CreatedAt: time.Now()})
	require.NoError(t, err)
	got, err := q.GetOrder(ctx, created.ID)
	require.NoError(t, err)
	require.Equal(t, "5.8", got.TotalPrice.String())
	require.JSONEq(t, string(items), string(got.Items))
	list, err := q.ListOrdersByUser(ctx, db.ListOrdersByUserParams{UserID: user.ID, RowLimit: 10})
	require.NoError(t, err)
	require.Len(t, list, 1)
	updated, err := q.UpdateOrderStatus(ctx, db.UpdateOrderStatusParams{
		ID: created.ID, UserID: user.ID, NewStatus: db.OrderStatusPAID, FromStatuses: []string{"PENDING"},
	})
	require.NoError(t, err)
	require.Equal(t, db.OrderStatusPAID, updated.Order.Status)
	processed, err := q.ProcessOrdersOnce(ctx, db.ProcessOrdersOnceParams{
		OrderIds: []uuid.UUID{created.ID}, MessageIds: []string{uuid.NewString()}, Handler: "process_order",
	})
	require.NoError(t, err)
	require.Len(t, processed, 1)
	require.True(t, processed[0].First)
}

// TestMigrateIgnoresPgxParameters: MIGRATION_DATABASE_URL defaults to
// DATABASE_URL, which may carry pgx's own parameters; dbmate's driver would
// send them to PostgreSQL as settings, and PostgreSQL refuses unknown ones.
func TestMigrateIgnoresPgxParameters(t *testing.T) {
	t.Parallel()
	url := testdb.NewEmpty(t) + "&default_query_exec_mode=cache_describe&pool_max_conns=4"
	require.NoError(t, database.Migrate(t.Context(), url, quiet()))
	pending, err := database.Pending(url)
	require.NoError(t, err)
	require.Zero(t, pending)
}
