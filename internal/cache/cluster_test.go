package cache

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/cache/pin"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// clusterClient returns a plain cluster client on c, closed when t ends.
func clusterClient(t *testing.T, c *testredis.Cluster) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(c.URL())
	require.NoError(t, err)
	opt.DisableCache = true
	direct, err := rueidis.NewClient(opt)
	require.NoError(t, err)
	t.Cleanup(direct.Close)
	require.Equal(t, rueidis.ClientModeCluster, direct.Mode())
	return pin.Client(direct)
}

// TestStoreOnCluster: on a 3-master Redis Cluster, the cache's scripts
// work (their two keys share a slot), every version-floor and lease rule
// holds as on one Redis, and the purge empties every master.
func TestStoreOnCluster(t *testing.T) {
	t.Parallel()
	cluster := testredis.StartCluster(t, 3, 0)
	direct := clusterClient(t, cluster)

	t.Run("protocol", func(t *testing.T) {
		t.Parallel()
		storeProtocol(t, cluster.URL(), direct, "proto")
	})

	t.Run("value and meta share a slot", func(t *testing.T) {
		t.Parallel()
		r, _ := open(t, cluster.URL())
		s := NewStore(r, "layout")
		s.Put(t.Context(), "order:v2:1", 7, []byte("v7"), time.Minute)
		value, meta := s.keys(direct, "order:v2:1")
		require.Equal(t, "layout:cache:{order:v2:1}", value)
		require.Equal(t, "00000000000000000007v7", raw(t, direct, value))
		floor, err := direct.Do(t.Context(), direct.B().Hget().Key(meta).Field("floor").Build()).ToString()
		require.NoError(t, err)
		require.Equal(t, "00000000000000000007", floor)
		require.Same(t, cluster.MasterOf(t, value), cluster.MasterOf(t, meta))
	})

	t.Run("purge walks every master", func(t *testing.T) {
		t.Parallel()
		r, _ := open(t, cluster.URL())
		s := NewStore(r, "purge")
		const n = 60
		for i := range n {
			s.Put(t.Context(), fmt.Sprint("k", i), 1, []byte("stale?"), time.Minute)
		}
		holders := map[int]int{}
		for i := range n {
			value, _ := s.keys(direct, fmt.Sprint("k", i))
			require.NotEmpty(t, raw(t, direct, value))
			holders[cluster.MasterOf(t, value).Port]++
		}
		require.Len(t, holders, 3, "the entries are spread over all three masters: %v", holders)
		otherKey := "purge:ratelimit:v1:x"
		require.NoError(t, direct.Do(t.Context(), direct.B().Set().Key(otherKey).Value("1").Build()).Error())

		s.overflowed.Store(true) // as after maxPending failed puts
		require.Eventually(t, func() bool { return !s.overflowed.Load() }, 10*time.Second, 10*time.Millisecond)
		for _, m := range cluster.Masters {
			keys, err := m.Do(t, "KEYS", "purge:cache:*")
			require.NoError(t, err)
			left, _ := keys.AsStrSlice()
			require.Empty(t, left, "left on master %d", m.Port)
		}
		require.Equal(t, "1", raw(t, direct, otherKey), "the purge stays inside the cache's keys")
	})
}
