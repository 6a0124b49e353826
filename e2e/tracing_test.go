package e2e

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// collector is an OTLP/HTTP trace receiver: it keeps the name and trace id
// of every span the processes export.
type collector struct {
	mu    sync.Mutex
	spans map[string][]string // trace id -> span names
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				id := hex.EncodeToString(s.GetTraceId())
				c.spans[id] = append(c.spans[id], s.GetName())
			}
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// traceWith returns the span names of the trace holding a span called name.
func (c *collector) traceWith(name string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, names := range c.spans {
		for _, n := range names {
			if n == name {
				return append([]string(nil), names...)
			}
		}
	}
	return nil
}

// TestOneTraceFromRequestToTask: the HTTP request, the new_order handler and
// the process_order task handler, in two processes, report one trace.
func TestOneTraceFromRequestToTask(t *testing.T) {
	t.Parallel()
	col := &collector{spans: map[string][]string{}}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	sys := newSystem(t, testdb.New(t), testamqp.Namespace(t), map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL,
		"OTEL_BSP_SCHEDULE_DELAY":     "100",
	})
	auth := sys.login()
	resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))

	want := []string{"POST /orders/", "start_processing_0", "process_order_0"}
	require.Eventually(t, func() bool {
		names := col.traceWith("POST /orders/")
		return containsPrefixed(names, "start_processing_") && containsPrefixed(names, "process_order_")
	}, 30*time.Second, 100*time.Millisecond, "want one trace holding %v (instance numbers vary); got %v", want, col.spans)
}

func containsPrefixed(names []string, prefix string) bool {
	for _, n := range names {
		if len(n) >= len(prefix) && n[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}
