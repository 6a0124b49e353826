package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/hostile"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// floodSize is how many hostile bodies arrive at once.
const floodSize = 200

// BenchmarkHostileFlood sends 200 hostile requests at once, every shape in
// turn, to the API binary and reports its peak resident memory (VmHWM, the
// budget is 64 MiB) and the slowest answer of a flood. Rate limits are set
// out of reach, so every request is read and refused on its merits.
//
//	go test -run XXX -bench HostileFlood -benchtime 5x ./e2e
func BenchmarkHostileFlood(b *testing.B) {
	budget := "100000000/1m"
	api := startProc(b, "server", map[string]string{
		"DATABASE_URL":           testdb.New(b),
		"REDIS_KEY_PREFIX":       testredis.Prefix(b),
		"JWT_SECRET":             "e2e-secret-0123456789abcdef-0123456789",
		"HTTP_ADDR":              "127.0.0.1:0",
		"LOG_LEVEL":              "info",
		"RATE_LIMIT_ANONYMOUS":   budget,
		"RATE_LIMIT_AUTH":        budget,
		"RATE_LIMIT_LOGIN_EMAIL": budget,
		"RATE_LIMIT_USER":        budget,
	})
	base := api.URL(process.HTTPAddr)
	token, orderID := floodUser(b, base)
	shapes := hostile.Shapes()
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: floodSize}, Timeout: time.Minute}
	var slowest time.Duration
	for b.Loop() {
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range floodSize {
			shape := shapes[i%len(shapes)]
			wg.Go(func() {
				req := shape.Request(context.Background(), b, base, token, orderID)
				req.Body = io.NopCloser(bytes.NewReader(shape.Body))
				start := time.Now()
				resp, err := httpClient.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				mu.Lock()
				slowest = max(slowest, time.Since(start))
				mu.Unlock()
				if resp.StatusCode != shape.Want {
					b.Errorf("%s answered %d, want %d", shape.Name, resp.StatusCode, shape.Want)
				}
			})
		}
		wg.Wait()
	}
	b.ReportMetric(float64(peakRSS(b, api.Pid()))/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(slowest.Seconds()*1000, "slowest-ms")
}

func floodUser(b *testing.B, base string) (token, orderID string) {
	b.Helper()
	c, err := client.NewClientWithResponses(base)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	email := fmt.Sprintf("flood-%d@example.com", time.Now().UnixNano())
	if _, err := c.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: "correct-horse"}); err != nil {
		b.Fatal(err)
	}
	tok, err := c.CreateTokenWithFormdataBodyWithResponse(ctx, client.CreateTokenFormdataRequestBody{Username: email, Password: "correct-horse"})
	if err != nil || tok.JSON200 == nil {
		b.Fatalf("login: %v", err)
	}
	bearer := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+tok.JSON200.AccessToken)
		return nil
	}
	order, err := c.CreateOrderWithBodyWithResponse(ctx, nil, "application/json",
		strings.NewReader(`{"items":[{"product_id":1,"quantity":1,"price":2.9}]}`), bearer)
	if err != nil || order.JSON201 == nil {
		b.Fatalf("create order: %v", err)
	}
	return tok.JSON200.AccessToken, order.JSON201.Id.String()
}

// peakRSS reads the process's peak resident set size in bytes.
func peakRSS(b *testing.B, pid int) int64 {
	b.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
