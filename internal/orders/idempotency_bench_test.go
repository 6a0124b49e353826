package orders

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// BenchmarkCreateOnce measures creates without HTTP, without and with an
// Idempotency-Key (a fresh one each), alternating rounds so that drift hits
// both; the goal is a keyed create at least 0.9x as fast. It prints creates
// per second and the ratio; nothing is asserted.
//
//	go test -run XXX -bench CreateOnce -benchtime 3s ./internal/orders
func BenchmarkCreateOnce(b *testing.B) {
	pool, _ := testdb.Pool(b, 16)
	svc := NewService(pool)
	users := make([]int64, 16)
	for i := range users {
		u, err := db.New(pool).CreateUser(b.Context(), db.CreateUserParams{Email: fmt.Sprintf("bench-%d@example.com", i), PasswordHash: "x"})
		if err != nil {
			b.Fatal(err)
		}
		users[i] = u.ID
	}
	items := []Item{item(42, 2, "2.9"), item(7, 1, "10.05")}
	const rounds = 3
	rates := map[string][]float64{"no key": make([]float64, rounds), "key": make([]float64, rounds)}
	for round := range rounds {
		for _, keyed := range []bool{false, true} {
			name := map[bool]string{false: "no key", true: "key"}[keyed]
			b.Run(fmt.Sprintf("%s/round %d", name, round), func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(8) // 16 goroutines on 2 cores: the pool's size
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						var key *string
						if keyed {
							k := uuid.NewString()
							key = &k
						}
						if _, _, err := svc.CreateOnce(b.Context(), users[i%int64(len(users))], key, items); err != nil {
							b.Error(err)
							return
						}
					}
				})
				rate := float64(n.Load()) / time.Since(start).Seconds()
				b.ReportMetric(rate, "creates/s")
				rates[name][round] = rate // the last call is the measured one
			})
		}
	}
	for round := range rounds {
		fmt.Printf("round %d: creates/s without key %.0f, with key %.0f: %.2fx\n",
			round, rates["no key"][round], rates["key"][round], rates["key"][round]/rates["no key"][round])
	}
}
