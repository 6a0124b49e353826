package cache

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testlog"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

const testTimeout = 50 * time.Millisecond

// open returns a Redis client on url with the production defaults and a
// short cooldown, logging into the returned sink.
func open(t *testing.T, url string) (*Redis, *testlog.Sink) {
	t.Helper()
	logs := testlog.NewSink()
	r, err := Open(Options{
		URL: url, Timeout: testTimeout, Failures: 3, Cooldown: 50 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	return r, logs
}

// raw returns what Redis holds under key (empty when nothing).
func raw(t *testing.T, c rueidis.Client, key string) string {
	t.Helper()
	v, err := c.Do(t.Context(), c.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return ""
	}
	require.NoError(t, err)
	return v
}

func TestStoreProtocol(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	storeProtocol(t, testredis.URL(), testredis.Client(t), prefix)
}

// storeProtocol checks the version-floor and lease rules on the Redis at
// url; direct is a plain client on it.
func storeProtocol(t *testing.T, url string, direct rueidis.Client, prefix string) {
	t.Helper()
	r, _ := open(t, url)
	s := NewStore(r, prefix)
	const ttl = time.Minute
	// del deletes what a Put of key left: its value, or with meta its floor too.
	del := func(t *testing.T, key string, meta ...bool) {
		t.Helper()
		value, metaKey := s.keys(direct, key)
		require.NoError(t, direct.Do(t.Context(), direct.B().Del().Key(value).Build()).Error())
		if len(meta) > 0 {
			require.NoError(t, direct.Do(t.Context(), direct.B().Del().Key(metaKey).Build()).Error())
		}
	}
	miss := func(t *testing.T, key string) string {
		t.Helper()
		_, lease, hit := s.Get(t.Context(), key)
		require.False(t, hit)
		require.NotEmpty(t, lease, "a miss hands out a lease")
		return lease
	}
	tests := []struct {
		name string
		run  func(t *testing.T, key string)
		want string // what Get returns afterwards; "" for a miss
	}{
		{"a fill after a miss lands", func(t *testing.T, key string) {
			s.Fill(t.Context(), key, miss(t, key), 1, ttl, bytesOf("v1"))
		}, "v1"},
		{"a fill loses to a put made after its miss, even once the put's value is gone", func(t *testing.T, key string) {
			lease := miss(t, key)                                  // the reader misses, then loads v1 from the database
			s.Put(t.Context(), key, 2, []byte("v2"), ttl)          // a writer commits v2 and caches it
			del(t, key)                                            // v2 expires or is evicted
			s.Fill(t.Context(), key, lease, 1, ttl, bytesOf("v1")) // the reader's late fill
		}, ""},
		{"...and once the put's version floor is gone too (eviction, a purge)", func(t *testing.T, key string) {
			lease := miss(t, key)
			s.Put(t.Context(), key, 2, []byte("v2"), ttl)
			del(t, key, true)
			s.Fill(t.Context(), key, lease, 1, ttl, bytesOf("v1"))
		}, ""},
		{"only the latest miss may fill", func(t *testing.T, key string) {
			first, second := miss(t, key), miss(t, key)
			s.Fill(t.Context(), key, first, 1, ttl, bytesOf("first"))
			s.Fill(t.Context(), key, second, 1, ttl, bytesOf("second"))
		}, "second"},
		{"a lease fills once", func(t *testing.T, key string) {
			lease := miss(t, key)
			s.Fill(t.Context(), key, lease, 1, ttl, bytesOf("v1"))
			del(t, key)
			s.Fill(t.Context(), key, lease, 1, ttl, bytesOf("again"))
		}, ""},
		{"no lease, no fill", func(t *testing.T, key string) {
			s.Fill(t.Context(), key, "", 1, ttl, bytesOf("v1"))
		}, ""},
		{"a put replaces an older put", func(t *testing.T, key string) {
			s.Put(t.Context(), key, 1, []byte("v1"), ttl)
			s.Put(t.Context(), key, 2, []byte("v2"), ttl)
		}, "v2"},
		{"an older put is ignored", func(t *testing.T, key string) {
			s.Put(t.Context(), key, 2, []byte("v2"), ttl)
			s.Put(t.Context(), key, 1, []byte("v1"), ttl)
		}, "v2"},
		{"a late put loses to a newer one even once the newer value is gone", func(t *testing.T, key string) {
			s.Put(t.Context(), key, 3, []byte("v3"), ttl)
			del(t, key)
			s.Put(t.Context(), key, 2, []byte("v2"), ttl)
		}, ""},
		{"an equal put overwrites (same state, fresh TTL)", func(t *testing.T, key string) {
			s.Put(t.Context(), key, 3, []byte("v3"), ttl)
			s.Put(t.Context(), key, 3, []byte("v3'"), ttl)
		}, "v3'"},
		{"a fill older than the last put is refused", func(t *testing.T, key string) {
			s.Put(t.Context(), key, 5, []byte("v5"), ttl)
			del(t, key)
			s.Fill(t.Context(), key, miss(t, key), 4, ttl, bytesOf("v4"))
		}, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprint("k", i)
			tt.run(t, key)
			v, _, hit := s.Get(t.Context(), key)
			if tt.want == "" {
				require.False(t, hit, "got %q", v)
				return
			}
			require.True(t, hit)
			require.Equal(t, tt.want, string(v))
		})
	}
}

// TestStoreLayout: what a Put leaves in Redis, and for how long.
func TestStoreLayout(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	r, _ := open(t, testredis.URL())
	s := NewStore(r, prefix)
	direct := testredis.Client(t)
	ctx := t.Context()
	s.Put(ctx, "order", 21, []byte("v21"), time.Minute)

	require.Equal(t, "00000000000000000021v21", raw(t, direct, prefix+":cache:order"), "a 20-digit version, then the value")
	floor, err := direct.Do(ctx, direct.B().Hget().Key(prefix+":cache:order:meta").Field("floor").Build()).ToString()
	require.NoError(t, err)
	require.Equal(t, "00000000000000000021", floor)
	pttl := func(key string) time.Duration {
		ms, err := direct.Do(ctx, direct.B().Pttl().Key(key).Build()).AsInt64()
		require.NoError(t, err)
		return time.Duration(ms) * time.Millisecond
	}
	require.InDelta(t, time.Minute, pttl(prefix+":cache:order"), float64(5*time.Second))
	require.InDelta(t, time.Minute+floorMargin, pttl(prefix+":cache:order:meta"), float64(5*time.Second), "the floor outlives the value")

	_, lease, hit := s.Get(ctx, "missing")
	require.False(t, hit)
	got, err := direct.Do(ctx, direct.B().Hget().Key(prefix+":cache:missing:meta").Field("lease").Build()).ToString()
	require.NoError(t, err)
	require.Equal(t, lease, got)
	require.InDelta(t, leaseTTL, pttl(prefix+":cache:missing:meta"), float64(5*time.Second))
}

func TestStoreEntriesExpire(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	r, _ := open(t, testredis.URL())
	s := NewStore(r, prefix)
	s.Put(t.Context(), "short", 1, []byte("x"), 150*time.Millisecond)
	_, _, hit := s.Get(t.Context(), "short")
	require.True(t, hit)
	require.Eventually(t, func() bool { _, _, hit := s.Get(t.Context(), "short"); return !hit }, 5*time.Second, 20*time.Millisecond)
}

// TestRedisHangGivesUpAtTheDeadline: a Redis that stops answering costs each
// call at most the deadline, the breaker then stops calling it at all, and
// the client comes back by itself when Redis answers again.
func TestRedisHangGivesUpAtTheDeadline(t *testing.T) {
	t.Parallel()
	testredis.Prefix(t)
	proxy := testredis.NewFreezer(t, testredis.URL())
	r, logs := open(t, proxy.URL())
	require.NoError(t, r.Ping(t.Context()))

	proxy.Freeze()
	for i := range 3 {
		start := time.Now()
		err := r.Ping(t.Context())
		require.ErrorIs(t, err, context.DeadlineExceeded, "call %d", i)
		// Generous bound: the point is "about the deadline", not the 12 s+
		// rueidis waits without one.
		require.Less(t, time.Since(start), time.Second, "call %d waited past its deadline", i)
	}
	// Three failures in a row: the breaker checks with a PING, which hangs
	// too until the probe deadline, and opens.
	require.Eventually(t, func() bool { return !r.Available() }, 5*time.Second, time.Millisecond, "the breaker did not open with Redis hung")
	err := r.Ping(t.Context())
	require.ErrorIs(t, err, ErrUnavailable, "an open breaker answers without calling Redis")
	open, openings := circuitMetrics(t, r)
	require.InDelta(t, 1.0, open, 0)
	require.InDelta(t, 1.0, openings, 0)

	proxy.Thaw()
	require.Eventually(t, r.Available, 10*time.Second, 10*time.Millisecond, "the probe closes the breaker")
	require.NoError(t, r.Ping(t.Context()))
	open, _ = circuitMetrics(t, r)
	require.Zero(t, open)
	opened, closed := logs.Find(logOpen), logs.Find(logClosed)
	require.Len(t, opened, 1)
	require.Len(t, closed, 1)
	require.Equal(t, "WARN", opened[0]["level"])
	require.Equal(t, "WARN", closed[0]["level"], "closing is logged at the level of opening")
}

// TestStoreRepairsAPutRedisDidNotTake: a Put that times out while Redis still
// holds the old value must not let this instance serve that old value, and
// lands once Redis answers again.
func TestStoreRepairsAPutRedisDidNotTake(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	proxy := testredis.NewFreezer(t, testredis.URL())
	r, _ := open(t, proxy.URL())
	s := NewStore(r, prefix)
	direct := testredis.Client(t)
	ctx := t.Context()

	s.Put(ctx, "order", 1, []byte("old"), time.Minute)
	proxy.Freeze()
	s.Put(ctx, "order", 2, []byte("new"), time.Minute) // times out: kept for repair
	proxy.Thaw()

	_, lease, hit := s.Get(ctx, "order")
	require.False(t, hit, "while the put is pending, reads of its key bypass Redis (which still says old)")
	s.Fill(ctx, "order", lease, 1, time.Minute, bytesOf("old")) // and fills of it are dropped
	require.Eventually(t, func() bool { return strings.HasSuffix(raw(t, direct, prefix+":cache:order"), "new") },
		5*time.Second, 10*time.Millisecond, "the repair writes the put")
	require.Eventually(t, func() bool { v, _, hit := s.Get(ctx, "order"); return hit && string(v) == "new" }, 5*time.Second, 10*time.Millisecond)
}

// TestStorePurgesAfterLosingWrites: when more puts fail than can be kept,
// reads bypass Redis until every key under the prefix has been deleted.
func TestStorePurgesAfterLosingWrites(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	r, _ := open(t, testredis.URL())
	s := NewStore(r, prefix)
	direct := testredis.Client(t)
	ctx := t.Context()
	for i := range 3 {
		s.Put(ctx, fmt.Sprint(i), 1, []byte("stale?"), time.Minute)
	}
	otherKey := prefix + ":ratelimit:v1:x"
	require.NoError(t, direct.Do(ctx, direct.B().Set().Key(otherKey).Value("1").Build()).Error())

	s.overflowed.Store(true) // as after maxPending failed puts
	_, _, hit := s.Get(ctx, "0")
	require.False(t, hit, "an overflowed store trusts nothing in Redis")

	require.Eventually(t, func() bool { return !s.overflowed.Load() }, 5*time.Second, 10*time.Millisecond)
	for i := range 3 {
		require.Empty(t, raw(t, direct, fmt.Sprintf("%s:cache:%d", prefix, i)))
	}
	require.Equal(t, "1", raw(t, direct, otherKey), "the purge stays inside the cache's keys")
	_, lease, _ := s.Get(ctx, "0")
	s.Fill(ctx, "0", lease, 2, time.Minute, bytesOf("fresh"))
	v, _, hit := s.Get(ctx, "0")
	require.True(t, hit)
	require.Equal(t, "fresh", string(v))
}

func TestRedisReplyErrorsDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	prefix := testredis.Prefix(t)
	r, _ := open(t, testredis.URL())
	for range 10 {
		err := r.Do(t.Context(), func(ctx context.Context, c rueidis.Client) error {
			return c.Do(ctx, c.B().Incr().Key(prefix+":not-a-number").Build()).Error() // INCR on a missing key works...
		})
		require.NoError(t, err)
		err = r.Do(t.Context(), func(ctx context.Context, c rueidis.Client) error {
			return c.Do(ctx, c.B().Lpush().Key(prefix+":not-a-number").Element("x").Build()).Error() // ...LPUSH on it is WRONGTYPE
		})
		var reply *rueidis.RedisError
		require.ErrorAs(t, err, &reply, "%v", err)
	}
	require.True(t, r.Available(), "Redis answered every time: that is not an outage")
}

func TestOpenRefusesABadURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://127.0.0.1:6379", "redis://127.0.0.1:6379/x"} {
		_, err := Open(Options{URL: u, Timeout: testTimeout, Failures: 1, Cooldown: time.Second})
		require.Error(t, err, u)
	}
}

// TestOpenWithRedisUnreachableStartsDegraded: starting while Redis does not
// answer is not an error; calls fail fast until it does.
func TestOpenWithRedisUnreachableStartsDegraded(t *testing.T) {
	t.Parallel()
	r, logs := open(t, "redis://127.0.0.1:1") // nothing listens on port 1
	require.False(t, r.Available())
	start := time.Now()
	require.ErrorIs(t, r.Ping(t.Context()), ErrUnavailable)
	require.Less(t, time.Since(start), 10*time.Millisecond)
	require.Len(t, logs.Find("redis unavailable: circuit open, serving from PostgreSQL and in-process rate limits"), 1)
}

// bytesOf is a Fill value that is already encoded.
func bytesOf(v string) func() ([]byte, error) {
	return func() ([]byte, error) { return []byte(v), nil }
}

// TestOpenBeforeRedisAnswersConnectsLater: a process started while Redis
// hangs starts degraded, and the breaker's probe makes the client once
// Redis answers (with one address, rueidis then decides between one Redis
// and a cluster).
func TestOpenBeforeRedisAnswersConnectsLater(t *testing.T) {
	t.Parallel()
	testredis.Prefix(t) // Redis's shared test lock: no outage test runs meanwhile
	proxy := testredis.NewFreezer(t, testredis.URL())
	proxy.Freeze()
	start := time.Now()
	r, _ := open(t, proxy.URL())
	t.Logf("Open returned after %s with Redis hung", time.Since(start).Round(time.Millisecond))
	require.False(t, r.Available())
	require.ErrorIs(t, r.Ping(t.Context()), ErrUnavailable)

	proxy.Thaw()
	require.Eventually(t, r.Available, 15*time.Second, 20*time.Millisecond, "the probe connects once Redis answers")
	require.NoError(t, r.Ping(t.Context()))
}

// The observer given to NewStore learns every Get's outcome: a miss (with a
// lease), then a hit once filled; with Redis unreachable, a fallback.
func TestStoreGetObserver(t *testing.T) {
	t.Parallel()
	var outcomes []string
	observe := func(outcome string) { outcomes = append(outcomes, outcome) }
	r, _ := open(t, testredis.URL())
	s := NewStore(r, testredis.Prefix(t), WithGetObserver(observe))

	_, lease, _ := s.Get(t.Context(), "k")
	require.NotEmpty(t, lease)
	s.Fill(t.Context(), "k", lease, 1, time.Minute, bytesOf("v"))
	_, _, hit := s.Get(t.Context(), "k")
	require.True(t, hit)
	require.Equal(t, []string{"miss", "hit"}, outcomes)

	outcomes = nil
	down, _ := open(t, "redis://127.0.0.1:1")
	_, _, hit = NewStore(down, testredis.Prefix(t), WithGetObserver(observe)).Get(t.Context(), "k")
	require.False(t, hit)
	require.Equal(t, []string{"fallback"}, outcomes)
}
