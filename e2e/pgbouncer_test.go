package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// TestPipelineThroughPgBouncer runs both processes with DATABASE_URL on a
// PgBouncer in transaction pooling (fewer server connections than either
// process's pool) and MIGRATION_DATABASE_URL direct, as README's "PostgreSQL
// and PgBouncer" says: orders created, read, changed (with an Idempotency-Key
// and If-Match: the statements that take a row lock or a lock_timeout) and
// processed exactly once. Then PgBouncer restarts under load: the API answers
// 503 with Retry-After while it is gone, never a 500, and creates again once
// it is back; every order it accepted is processed once.
func TestPipelineThroughPgBouncer(t *testing.T) {
	t.Parallel()
	dbURL := testdb.New(t)
	bouncer := testdb.StartPgBouncer(t, dbURL, 4)
	sys := newSystem(t, bouncer.URL("cache_describe"), testamqp.Namespace(t), map[string]string{
		"MIGRATION_DATABASE_URL": dbURL,
		"RATE_LIMIT_ENABLED":     "false",
	})
	ctx := context.Background()
	auth := sys.login()
	pool := openPool(t, dbURL) // the test's own reads: direct, pgx's default mode

	var ids []uuid.UUID
	for i := range 20 {
		var params *client.CreateOrderParams
		if i%2 == 0 {
			key := uuid.NewString()
			params = &client.CreateOrderParams{IdempotencyKey: &key}
		}
		resp, err := sys.client.CreateOrderWithResponse(ctx, params, oneItemOrder(), auth)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
		ids = append(ids, resp.JSON201.Id)
	}
	got, err := sys.client.GetOrderWithResponse(ctx, ids[0], nil, auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, got.StatusCode(), string(got.Body))
	etag := got.HTTPResponse.Header.Get("ETag")
	paid, err := sys.client.UpdateOrderStatusWithResponse(ctx, ids[0], &client.UpdateOrderStatusParams{IfMatch: &etag},
		client.UpdateOrderStatusJSONRequestBody{Status: client.OrderStatusPAID}, auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, paid.StatusCode(), string(paid.Body))
	waitAllProcessed(t, pool, ids, 60*time.Second)

	// The pooler goes away and comes back while orders keep coming.
	var accepted, unavailable, other int
	create := func() {
		resp, err := sys.client.CreateOrderWithResponse(ctx, nil, oneItemOrder(), auth)
		require.NoError(t, err)
		switch resp.StatusCode() {
		case http.StatusCreated:
			accepted++
			ids = append(ids, resp.JSON201.Id)
		case http.StatusServiceUnavailable:
			unavailable++
			require.NotEmpty(t, resp.HTTPResponse.Header.Get("Retry-After"), "a 503 says when to retry")
		default:
			other++
			t.Errorf("status %d while PgBouncer restarts: %s", resp.StatusCode(), resp.Body)
		}
	}
	for range 10 {
		create()
	}
	bouncer.Stop()
	stopped := time.Now()
	for time.Since(stopped) < 2*time.Second {
		create()
		time.Sleep(20 * time.Millisecond)
	}
	require.Positive(t, unavailable, "requests that need PostgreSQL answer 503 while the pooler is gone")
	bouncer.Start()
	restarted := time.Now()
	before := accepted
	require.Eventually(t, func() bool { create(); return accepted > before }, 30*time.Second, 50*time.Millisecond,
		"creates succeed again once PgBouncer is back")
	recovered := time.Since(restarted)
	for range 10 {
		create()
	}
	waitAllProcessed(t, pool, ids, 60*time.Second)
	assertProcessedOnce(t, sys, pool, ids)
	require.Zero(t, other)
	t.Logf("%d orders processed once; PgBouncer down 2s: %d answers 503, first create %s after it was back",
		len(ids), unavailable, recovered.Round(time.Millisecond))
}
