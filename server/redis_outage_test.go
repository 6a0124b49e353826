package main

import (
	"net/http"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// Log lines an outage must produce exactly once each.
const (
	logRedisDown      = "redis unavailable: circuit open, serving from PostgreSQL and in-process rate limits"
	logRedisUp        = "redis available again: circuit closed"
	logLimitsFallback = "rate limiting falls back to in-process budgets (per instance) while redis is unavailable"
	logLimitsShared   = "rate limiting uses the shared budgets in redis again"
)

// TestRedisOutage stops the real Redis while the API serves and starts it
// again: every endpoint keeps answering correctly from PostgreSQL with no
// 5xx and no wait on Redis, rate limits stay enforced in process, /ready
// says degraded but stays 200, each state change is logged once, and the
// API goes back to Redis by itself.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	prefix := testredis.Outage(t) // Redis runs again when the test ends, pass or fail
	ts := startServer(t, map[string]string{
		"REDIS_KEY_PREFIX":       prefix,
		"CACHE_TTL":              "5m",
		"REDIS_BREAKER_COOLDOWN": "100ms",
		"RATE_LIMIT_LOGIN_EMAIL": "3/1h",
	})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: prefix}
	alice := newUser(t, s) // alice's first login, against the Redis budget
	before := newOrder(t, s, alice)
	markProcessed(t, ts.DBURL, before.Id) // the cache holds processed orders
	getOrder(t, s, alice, before.Id)
	requireReady(t, s, "ok", "ok", "redis")

	testredis.Stop(t)

	// timed runs one request and fails it if it waited on Redis: a call
	// without a deadline would wait for seconds, ours for at most 50 ms.
	var slowest time.Duration
	timed := func(name string, call func() int, want int) {
		t.Helper()
		start := time.Now()
		status := call()
		took := time.Since(start)
		slowest = max(slowest, took)
		require.Equal(t, want, status, name)
		require.Less(t, took, time.Second, "%s waited on Redis", name)
	}
	c := s.Client
	var bob testUser
	timed("register", func() int {
		r, err := c.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(uniqueEmail()), Password: testPassword})
		bob = testUser{ID: r.JSON201.Id, Email: string(r.JSON201.Email), Password: testPassword}
		return statusOf(t, r, err)
	}, 201)
	timed("token", func() int {
		r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: bob.Email, Password: bob.Password})
		bob.Token = r.JSON200.AccessToken
		return statusOf(t, r, err)
	}, 200)
	var during client.Order
	timed("create", func() int {
		r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(7, 3, "0.1")}}, alice.auth())
		during = *r.JSON201
		return statusOf(t, r, err)
	}, 201)
	markProcessed(t, ts.DBURL, during.Id)
	for range 20 {
		for _, id := range []client.Order{before, during} {
			timed("get", func() int {
				r, err := c.GetOrderWithResponse(t.Context(), id.Id, nil, alice.auth())
				return statusOf(t, r, err)
			}, 200)
		}
	}
	timed("patch", func() int {
		r, err := c.UpdateOrderStatusWithResponse(t.Context(), before.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
		return statusOf(t, r, err)
	}, 200)
	require.Equal(t, client.OrderStatusPAID, getOrder(t, s, alice, before.Id).Status, "read after PATCH, from PostgreSQL")
	require.Equal(t, "0.3", getOrder(t, s, alice, during.Id).TotalPrice.String())
	timed("list", func() int {
		r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
		require.Len(t, *r.JSON200, 2)
		return statusOf(t, r, err)
	}, 200)
	timed("health", func() int { r, err := c.GetHealthWithResponse(t.Context()); return statusOf(t, r, err) }, 200)
	requireReady(t, s, "degraded", "unavailable", "in-process fallback")
	require.Contains(t, scrapeMetrics(t, s.URL), "orders_redis_circuit_open 1")

	// Never unlimited: alice's per-email login budget (3) now counts in
	// process, so the fourth guess is refused.
	statuses := make([]int, 4)
	for i := range statuses {
		r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: alice.Email, Password: "wrong-password"})
		statuses[i] = statusOf(t, r, err)
	}
	require.Equal(t, []int{401, 401, 401, http.StatusTooManyRequests}, statuses)
	t.Logf("slowest request while Redis was down: %s", slowest)

	testredis.Start(t)

	require.Eventually(t, func() bool {
		r, err := c.GetReadyWithResponse(t.Context())
		return err == nil && r.JSON200 != nil && r.JSON200.Status == "ok"
	}, 30*time.Second, 50*time.Millisecond, "the breaker closes by itself once Redis answers") // generous: CI runs every package at once
	requireReady(t, s, "ok", "ok", "redis")
	require.Contains(t, scrapeMetrics(t, s.URL), "orders_redis_circuit_open 0")
	require.Contains(t, scrapeMetrics(t, s.URL), "orders_redis_circuit_openings_total 1")
	// The orders written during the outage reach the (restarted, empty) cache
	// by repair, with their current state.
	require.Eventually(t, func() bool {
		_, entry, ok := cached.get(t, before.Id)
		return ok && entry.Status == client.OrderStatusPAID
	}, 30*time.Second, 20*time.Millisecond, "the PATCH made during the outage reaches the cache by repair")
	require.Equal(t, client.OrderStatusPAID, getOrder(t, s, alice, before.Id).Status)
	// A read fills the cache; on a loaded machine a fill can miss the 50 ms
	// Redis timeout, and the next read fills it then.
	require.Eventually(t, func() bool {
		getOrder(t, s, alice, during.Id)
		_, _, ok := cached.get(t, during.Id)
		return ok
	}, 10*time.Second, 50*time.Millisecond, "the order created during the outage is cached by a read once Redis is back")
	getOrder(t, s, alice, during.Id) // a budgeted request: back on the shared budgets

	for _, msg := range []string{logRedisDown, logLimitsFallback, logRedisUp, logLimitsShared} {
		recs := ts.logs.Find(msg)
		require.Len(t, recs, 1, "logged once: %q", msg)
		// One level both ways: at LOG_LEVEL=warn the way back is seen too.
		require.Equal(t, "WARN", recs[0]["level"], "%q", msg)
	}
	for _, rec := range ts.logs.Find("request") {
		status, _ := rec["status"].(float64)
		require.Less(t, status, 500.0, "a 5xx during the outage: %v", rec)
	}
}

// requireReady checks /ready: 200 with the given status and optional parts.
func requireReady(t *testing.T, s *contractServer, status, redis, rateLimits string) {
	t.Helper()
	r, err := s.Client.GetReadyWithResponse(t.Context())
	require.NoError(t, err)
	require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
	require.Equal(t, status, r.JSON200.Status)
	require.Equal(t, map[string]string{"postgres": "ok", "migrations": "ok"}, r.JSON200.Checks)
	require.NotNil(t, r.JSON200.Optional)
	require.Equal(t, map[string]string{"redis": redis, "rate_limits": rateLimits}, *r.JSON200.Optional)
}
