package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testdb"
	"github.com/ordersvc/orders/internal/testlog"
)

const testJWTSecret = "test-secret-0123456789abcdef-0123456789"

// testServer is the real API started through run() on its own database.
type testServer struct {
	URL    string
	DBURL  string
	Client *client.ClientWithResponses
	logs   *testlog.Sink
}

// startServer runs the API on a fresh database and stops it when t ends.
// env overrides the test defaults.
func startServer(t *testing.T, env map[string]string) *testServer {
	t.Helper()
	dbURL := testdb.New(t)
	vars := map[string]string{
		"DATABASE_URL": dbURL,
		"JWT_SECRET":   testJWTSecret,
		"HTTP_ADDR":    "127.0.0.1:0",
		"LOG_LEVEL":    "debug",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	sink := testlog.NewSink()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, sink) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "run returned an error on shutdown")
		case <-time.After(20 * time.Second):
			t.Error("server did not stop within 20s of cancellation")
		}
	})

	select {
	case err := <-done:
		t.Fatalf("server exited at start: %v\nlogs:\n%s", err, sink.String())
	case <-time.After(0):
	}
	rec, ok := sink.WaitFor("http server listening", 30*time.Second)
	if !ok {
		t.Fatalf("server did not start within 30s\nlogs:\n%s", sink.String())
	}
	addr, _ := rec["addr"].(string)
	base := "http://" + addr
	c, err := client.NewClientWithResponses(base)
	require.NoError(t, err)
	return &testServer{URL: base, DBURL: dbURL, Client: c, logs: sink}
}

// bearer returns a request editor that authenticates as token.
func bearer(token string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}
