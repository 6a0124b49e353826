package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

const testJWTSecret = "test-secret-0123456789abcdef-0123456789"

// testServer is the real API started through run() on its own database.
type testServer struct {
	URL         string
	DBURL       string
	RedisPrefix string
	Client      *client.ClientWithResponses
	logs        *testlog.Sink
	proc        *proc.Proc
	stop        func()
}

// Stop shuts the server down now rather than when the test ends, as a
// restart would; the database stays.
func (s *testServer) Stop(testing.TB) { s.stop() }

// testBudget is the default of every rate limit in tests: far above what
// any test sends, so only the tests about rate limits (which set their own)
// ever meet a 429, while every request still goes through the limiter.
const testBudget = "100000/1m"

// testCacheTTL is CACHE_TTL in tests: off unless a test turns it on. With the
// order cache on, a GET may be answered from Redis, which a test breaking
// PostgreSQL on purpose (to see a 500) must not depend on the timing of.
// The cache's own tests set CACHE_TTL.
const testCacheTTL = "0s"

// startServer runs the API on a fresh database and stops it when t ends.
// env overrides the test defaults. The server gets its own Redis key prefix
// (its own cache entries and rate-limit budgets) under Redis's shared test
// lock, unless env sets REDIS_KEY_PREFIX: then the caller holds the lock
// (testredis.Prefix, or testredis.Outage for a test that stops Redis).
func startServer(t testing.TB, env map[string]string) *testServer {
	t.Helper()
	return startServerUntil(t, env, "")
}

// startUnreadyServer is startServer for an API meant not to be ready (its
// database not migrated): it waits for the address, not for READY=1.
func startUnreadyServer(t testing.TB, env map[string]string) *testServer {
	t.Helper()
	return startServerUntil(t, env, process.HTTPAddr)
}

func startServerUntil(t testing.TB, env map[string]string, until string) *testServer {
	t.Helper()
	vars := serverEnv(t, env)
	dbURL, prefix := vars["DATABASE_URL"], vars["REDIS_KEY_PREFIX"]
	testdb.ProcessEnv(vars)
	p, err := proc.StartFunc(context.Background(), proc.Func{Name: "server", Run: run, Env: vars, ReadyTimeout: 30 * time.Second, Until: until})
	require.NoError(t, err)
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() { require.NoError(t, p.Stop(20*time.Second), "the server's shutdown") })
	}
	t.Cleanup(stop)
	base := p.URL(process.HTTPAddr)
	c, err := client.NewClientWithResponses(base)
	require.NoError(t, err)
	return &testServer{URL: base, DBURL: dbURL, RedisPrefix: prefix, Client: c, logs: p.Logs(), proc: p, stop: stop}
}

// serverEnv is the environment startServer gives run: env over the test
// defaults, with a fresh database and, unless env names one, a fresh Redis
// key prefix under Redis's shared test lock.
func serverEnv(t testing.TB, env map[string]string) map[string]string {
	t.Helper()
	prefix, ok := env["REDIS_KEY_PREFIX"]
	if !ok {
		prefix = testredis.Prefix(t)
	}
	vars := map[string]string{
		"DATABASE_URL":           testdb.New(t),
		"DATABASE_MAX_CONNS":     "8", // tests run side by side on one PostgreSQL (100 connections)
		"JWT_SECRET":             testJWTSecret,
		"HTTP_ADDR":              "127.0.0.1:0",
		"LOG_LEVEL":              "debug",
		"REDIS_URL":              testredis.URL(),
		"REDIS_KEY_PREFIX":       prefix,
		"CACHE_TTL":              testCacheTTL,
		"RATE_LIMIT_ANONYMOUS":   testBudget,
		"RATE_LIMIT_AUTH":        testBudget,
		"RATE_LIMIT_LOGIN_EMAIL": testBudget,
		"RATE_LIMIT_USER":        testBudget,
	}
	for k, v := range env {
		vars[k] = v
	}
	if countsBudgets(env) {
		// Budgets are counted in Redis. A call that misses the default 50 ms
		// on a loaded machine falls back to the in-process limiter, whose
		// budget is fresh: a test counting requests up to a small budget
		// would see one more pass.
		vars["REDIS_TIMEOUT"] = "1s"
	}
	return vars
}

// countsBudgets reports whether env sets a small rate-limit budget of its
// own, and leaves Redis's timeouts and breaker to their defaults (the Redis
// outage tests set those, and need the defaults' short waits).
func countsBudgets(env map[string]string) bool {
	budget := false
	for k := range env {
		switch {
		case strings.HasPrefix(k, "REDIS_TIMEOUT"), strings.HasPrefix(k, "REDIS_BREAKER_"):
			return false
		case strings.HasPrefix(k, "RATE_LIMIT_") && k != "RATE_LIMIT_ENABLED":
			budget = true
		}
	}
	return budget
}

// bearer returns a request editor that authenticates as token.
func bearer(token string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}
