package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// TestBudgetsSharedOnCluster: on a 3-master Redis Cluster, three API
// instances (three clients) drawing on the same budgets together get
// exactly each budget, not each instance its own, for subjects whose keys
// live on every master.
func TestBudgetsSharedOnCluster(t *testing.T) {
	t.Parallel()
	cluster := testredis.StartCluster(t, 3, 0)
	instances := make([]*Limiter, 3)
	for i := range instances {
		instances[i], _ = newLimiter(t, cluster.URL(), "shared")
	}
	rate := Rate{Limit: 10, Period: time.Hour}
	const subjects = 12
	masters := map[int]bool{}
	for s := range subjects {
		masters[cluster.MasterOf(t, fmt.Sprintf("shared:ratelimit:v1:login:s%d", s)).Port] = true
	}
	require.Len(t, masters, 3, "the subjects' budgets are spread over all three masters")

	var allowed [subjects]atomic.Int64
	var wg sync.WaitGroup
	for _, l := range instances {
		for s := range subjects {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 8 { // 3 instances x 8 = 24 tries against a budget of 10
					if l.Allow(t.Context(), "login", fmt.Sprintf("s%d", s), rate).Allowed {
						allowed[s].Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	for s := range subjects {
		require.Equal(t, int64(10), allowed[s].Load(), "subject s%d: one budget across the instances", s)
	}
	for _, l := range instances {
		require.False(t, l.fallback.Load(), "every decision was made in Redis, none in process")
	}
}
