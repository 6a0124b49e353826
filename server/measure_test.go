package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ordersvc/orders/gen/client"
)

// BenchmarkGetOrder measures GET /orders/{id}/ through the real server:
// served from Redis, from PostgreSQL (cache off), and with Redis stopped or
// hung. It prints throughput and latency percentiles; nothing is asserted.
// Client and server share this machine's cores.
//
//	go test -run XXX -bench GetOrder -benchtime 5s ./server
func BenchmarkGetOrder(b *testing.B) {
	hung := blackHole(b)
	setups := []struct {
		name string
		env  map[string]string
	}{
		{"cached (Redis up)", map[string]string{"CACHE_TTL": "5m"}},
		{"uncached (CACHE_TTL=0, Redis up)", map[string]string{"CACHE_TTL": "0s"}},
		{"Redis down (refused)", map[string]string{"CACHE_TTL": "5m", "REDIS_URL": "redis://127.0.0.1:1"}},
		{"Redis hung (no answer)", map[string]string{"CACHE_TTL": "5m", "REDIS_URL": "redis://" + hung}},
	}
	for _, setup := range setups {
		env := map[string]string{"RATE_LIMIT_USER": "1000000000/1m"}
		for k, v := range setup.env {
			env[k] = v
		}
		ts := startQuietServer(b, env)
		token, ids := seedOrders(b, ts, 200)
		httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
		get := func(id uuid.UUID) {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodGet, ts.URL+"/orders/"+id.String()+"/", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := httpClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("GET answered %d", resp.StatusCode)
			}
		}
		for _, id := range ids { // warm the cache and the connections
			get(id)
		}
		b.Run(setup.name, func(b *testing.B) {
			var mu sync.Mutex
			var latencies []time.Duration
			b.SetParallelism(16) // 32 concurrent clients on 2 cores
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					get(ids[rand.IntN(len(ids))]) //nolint:gosec // load pattern, not security
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			slices.Sort(latencies)
			pct := func(p float64) float64 {
				return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "req/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(0, "ns/op")
			if b.N > 1000 {
				fmt.Printf("%-34s %8d requests  %7.0f req/s  p50 %6.2f ms  p99 %6.2f ms  max %6.2f ms\n",
					setup.name, len(latencies), float64(len(latencies))/elapsed.Seconds(), pct(0.5), pct(0.99), pct(1))
			}
		})
	}
}

// startQuietServer is startServer without the per-request access log, which
// the test log sink would parse line by line and so distort the figures:
// warn level, logs discarded, a port picked beforehand, /health polled.
func startQuietServer(b testing.TB, env map[string]string) *testServer {
	b.Helper()
	vars := serverEnv(b, env)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	vars["HTTP_ADDR"], vars["LOG_LEVEL"] = ln.Addr().String(), "warn"
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return vars[k] }, io.Discard) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("run: %v", err)
		}
	})
	base := "http://" + vars["HTTP_ADDR"]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/health"); err == nil { //nolint:noctx // start-up poll
			_ = resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("server did not answer /health within 30s")
		}
	}
	c, err := client.NewClientWithResponses(base)
	if err != nil {
		b.Fatal(err)
	}
	return &testServer{URL: base, DBURL: vars["DATABASE_URL"], RedisPrefix: vars["REDIS_KEY_PREFIX"], Client: c}
}

// seedOrders registers a user and creates n orders through the API.
func seedOrders(b testing.TB, ts *testServer, n int) (string, []uuid.UUID) {
	b.Helper()
	ctx := b.Context()
	email := uniqueEmail()
	reg, err := ts.Client.RegisterWithResponse(ctx, client.RegisterRequest{Email: openapi_types.Email(email), Password: testPassword})
	if err != nil || reg.StatusCode() != http.StatusCreated {
		b.Fatalf("register: %v %s", err, reg.Body)
	}
	tok, err := ts.Client.CreateTokenWithFormdataBodyWithResponse(ctx, client.TokenRequest{Username: email, Password: testPassword})
	if err != nil || tok.StatusCode() != http.StatusOK {
		b.Fatalf("token: %v", err)
	}
	token := tok.JSON200.AccessToken
	ids := make([]uuid.UUID, n)
	for i := range ids {
		r, err := ts.Client.CreateOrderWithResponse(ctx, nil, client.CreateOrderRequest{Items: []client.OrderItem{item(int64(i+1), 2, "2.9")}}, bearer(token))
		if err != nil || r.StatusCode() != http.StatusCreated {
			b.Fatalf("create order: %v", err)
		}
		ids[i] = r.JSON201.Id
	}
	markProcessed(b, ts.DBURL, ids...) // as the workers would: the cache holds processed orders
	return token, ids
}

// blackHole accepts TCP connections and never answers: a hung Redis.
func blackHole(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	b.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}
