package orders

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// BenchmarkServiceGet measures Service.Get alone (no HTTP): from Redis, from
// PostgreSQL, and with Redis down (breaker open, so PostgreSQL plus nothing).
// It prints throughput and latency percentiles; nothing is asserted.
//
//	go test -run XXX -bench ServiceGet -benchtime 3s ./internal/orders
func BenchmarkServiceGet(b *testing.B) {
	pool, err := database.Open(b.Context(), testdb.New(b), 16, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	prefix := testredis.Prefix(b)
	queries := db.New(pool)
	user, err := queries.CreateUser(b.Context(), db.CreateUserParams{Email: "bench@example.com", PasswordHash: "x"})
	if err != nil {
		b.Fatal(err)
	}
	open := func(url string) *cache.Redis {
		r, err := cache.Open(cache.Options{URL: url, Timeout: 50 * time.Millisecond, Failures: 3, Cooldown: time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(r.Close)
		return r
	}
	services := []struct {
		name string
		svc  *Service
	}{
		{"redis hit", NewService(pool, WithCache(cache.NewStore(open(testredis.URL()), prefix), time.Hour))},
		{"postgres (no cache)", NewService(pool)},
		{"redis down (breaker open)", NewService(pool, WithCache(cache.NewStore(open("redis://127.0.0.1:1"), prefix), time.Hour))},
	}
	ids := make([]uuid.UUID, 200)
	for i := range ids {
		o, err := services[0].svc.Create(b.Context(), user.ID, []Item{item(int64(i+1), 2, "2.9")})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = o.ID
	}
	// Processed, as the orders a cache serves are.
	messageIDs := make([]string, len(ids))
	for i, id := range ids {
		messageIDs[i] = "task-" + id.String()
	}
	if _, err := queries.ProcessOrdersOnce(b.Context(), db.ProcessOrdersOnceParams{OrderIds: ids, Handler: "process_order", MessageIds: messageIDs}); err != nil {
		b.Fatal(err)
	}
	for _, s := range services {
		b.Run(s.name, func(b *testing.B) {
			var mu sync.Mutex
			var latencies []time.Duration
			b.SetParallelism(8)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				local := make([]time.Duration, 0, 1024)
				for pb.Next() {
					t0 := time.Now()
					if _, err := s.svc.Get(b.Context(), user.ID, ids[rand.IntN(len(ids))]); err != nil { //nolint:gosec // load pattern
						b.Error(err)
						return
					}
					local = append(local, time.Since(t0))
				}
				mu.Lock()
				latencies = append(latencies, local...)
				mu.Unlock()
			})
			elapsed := time.Since(start)
			slices.Sort(latencies)
			p := func(q float64) float64 {
				return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "gets/s")
			b.ReportMetric(p(0.99), "p99-ms")
			if b.N > 1000 {
				fmt.Printf("%-28s %8d gets  %8.0f gets/s  p50 %6.3f ms  p99 %6.3f ms\n", s.name, len(latencies), float64(len(latencies))/elapsed.Seconds(), p(0.5), p(0.99))
			}
		})
	}
}
