package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/sdnotify"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// The workers tell their service manager (systemd with Type=notify, or a
// test) READY=1 when /ready answers 200, with the addresses they bound, and
// STOPPING=1 when shutdown begins; an order created after READY is processed.
func TestReadyAndStoppingAreAnnounced(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	notify, err := sdnotify.Listen()
	require.NoError(t, err)
	t.Cleanup(func() { _ = notify.Close() })
	vars := map[string]string{
		"DATABASE_URL":           e.dbURL,
		"AMQP_URL":               e.topo.URL,
		"AMQP_NAMESPACE":         e.topo.Namespace,
		"WORKERS_HTTP_ADDR":      "127.0.0.1:0",
		"DEBUG_ADDR":             "127.0.0.1:0",
		"PROCESS_ORDER_DURATION": "10ms",
		"NOTIFY_SOCKET":          notify.Socket(),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	logs := testlog.NewSink()
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, logs) }()

	wait, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	ready, err := notify.Wait(wait, "READY", "1")
	require.NoError(t, err, "workers log:\n%s", logs.String())
	require.Equal(t, "running", ready["STATUS"])
	status := "http://" + ready[process.WorkersHTTPAddr]
	require.Contains(t, testhttp.Get(t, status+"/ready"), `"router":"ok"`, "ready to the service manager is ready to the probe")
	resp, err := http.Get("http://" + ready[process.DebugAddr] + "/debug/pprof/cmdline") //nolint:noctx // a local probe
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "the profiler's address is reported too")

	o := e.createOrder()
	e.waitProcessed(o.ID, 20*time.Second)

	cancel()
	_, err = notify.Wait(wait, "STOPPING", "1")
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err, "a clean shutdown")
	case <-wait.Done():
		t.Fatal("the workers did not stop")
	}
	_, err = http.Get(status + "/health") //nolint:noctx,bodyclose // refused: no body
	require.Error(t, err, "the status endpoint is closed after shutdown")
}
