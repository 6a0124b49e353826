package orders

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

const testCacheTTL = time.Hour

// cachedFixture is a Service on its own database reading through Redis
// under its own key prefix, plus a direct Redis client to look at the keys.
type cachedFixture struct {
	fixture
	prefix string
	redis  rueidis.Client
}

func newCachedFixture(t *testing.T) cachedFixture {
	t.Helper()
	f := newFixture(t)
	prefix := testredis.Prefix(t)
	f.svc = cachedService(t, f.pool, prefix, nil)
	return cachedFixture{fixture: f, prefix: prefix, redis: testredis.Client(t)}
}

// cachedService is another instance of the service: its own Redis
// connection, the same database and key prefix. wrap, when set, wraps its
// cache (to interpose on calls). Its Redis timeout is a second, not the
// default 50 ms: these tests check what the cache holds, and a loaded test
// machine can take longer than 50 ms to answer.
func cachedService(t *testing.T, pool *pgxpool.Pool, prefix string, wrap func(Cache) Cache) *Service {
	t.Helper()
	r, err := cache.Open(cache.Options{
		URL: testredis.URL(), Timeout: time.Second, Failures: 3, Cooldown: 100 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	t.Cleanup(r.Close)
	var c Cache = cache.NewStore(r, prefix)
	if wrap != nil {
		c = wrap(c)
	}
	return NewService(pool, WithCache(c, testCacheTTL))
}

func (f cachedFixture) key(id uuid.UUID) string { return f.prefix + ":cache:order:v3:" + id.String() }

// entry returns the cached order under id's key, if any.
func (f cachedFixture) entry(t *testing.T, id uuid.UUID) (storedOrder, bool) {
	t.Helper()
	raw, err := f.redis.Do(t.Context(), f.redis.B().Get().Key(f.key(id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return storedOrder{}, false
	}
	require.NoError(t, err)
	e, ok := parseCacheEntry(id, []byte(raw[20:]))
	require.True(t, ok, "cached value %q", raw)
	var c storedOrder
	require.NoError(t, json.Unmarshal(e.Body, &c), "cached value %q", raw)
	require.Equal(t, e.Version, c.Version, "header and body name one version")
	return c, true
}

func (f cachedFixture) ttl(t *testing.T, id uuid.UUID) time.Duration {
	t.Helper()
	ms, err := f.redis.Do(t.Context(), f.redis.B().Pttl().Key(f.key(id)).Build()).AsInt64()
	require.NoError(t, err)
	return time.Duration(ms) * time.Millisecond
}

func (f cachedFixture) forget(t *testing.T, id uuid.UUID) {
	t.Helper()
	require.NoError(t, f.redis.Do(t.Context(), f.redis.B().Del().Key(f.key(id)).Build()).Error())
}

func TestCacheReadThrough(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	ctx := t.Context()
	owner, other := f.user(t), f.user(t)

	created := f.processed(t, owner)
	_, err := f.svc.Get(ctx, owner, created.ID)
	require.NoError(t, err)
	entry, ok := f.entry(t, created.ID)
	require.True(t, ok, "a read of a processed order fills the cache")
	require.Equal(t, StatusPending, entry.Status)
	require.Equal(t, "5.8", entry.TotalPrice.String())
	require.Equal(t, created.Version, entry.Version)

	t.Run("a hit answers without the database", func(t *testing.T) {
		// Rewrite the cached copy: if Get answers with it, it did not ask PostgreSQL.
		poisoned := entry
		poisoned.Items = []Item{item(99, 1, "1")}
		b, err := json.Marshal(poisoned)
		require.NoError(t, err)
		raw, err := f.redis.Do(ctx, f.redis.B().Get().Key(f.key(created.ID)).Build()).ToString()
		require.NoError(t, err)
		require.NoError(t, f.redis.Do(ctx, f.redis.B().Set().Key(f.key(created.ID)).Value(raw[:20]+string(cacheEntry(Order(poisoned), b))).Build()).Error())
		got, err := f.svc.Get(ctx, owner, created.ID)
		require.NoError(t, err)
		require.Equal(t, int64(99), got.Items[0].ProductID)
		encoded, err := f.svc.GetEncoded(ctx, owner, created.ID)
		require.NoError(t, err)
		require.Equal(t, string(b), string(encoded.Body), "the cached bytes, as they are")
		require.Equal(t, created.Version, encoded.Version)
	})

	t.Run("a miss reads the database and fills", func(t *testing.T) {
		f.forget(t, created.ID)
		got, err := f.svc.Get(ctx, owner, created.ID)
		require.NoError(t, err)
		require.Equal(t, created.Items, got.Items)
		require.True(t, created.UpdatedAt.Equal(got.UpdatedAt))
		entry, ok := f.entry(t, created.ID)
		require.True(t, ok)
		require.Equal(t, created.Items, entry.Items)
	})

	t.Run("ownership is checked on hits too", func(t *testing.T) {
		_, err := f.svc.Get(ctx, other, created.ID)
		require.ErrorIs(t, err, apperr.ErrForbidden)
	})

	t.Run("unknown orders are not cached", func(t *testing.T) {
		id := uuid.New()
		_, err := f.svc.Get(ctx, owner, id)
		require.ErrorIs(t, err, apperr.ErrNotFound)
		_, ok := f.entry(t, id)
		require.False(t, ok)
	})

	t.Run("an unreadable entry is ignored", func(t *testing.T) {
		require.NoError(t, f.redis.Do(ctx, f.redis.B().Set().Key(f.key(created.ID)).Value("00000000000000000000{not json").Build()).Error())
		got, err := f.svc.Get(ctx, owner, created.ID)
		require.NoError(t, err, "the database answers")
		require.Equal(t, created.Items, got.Items)
	})
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	o := f.processed(t, f.user(t))
	_, err := f.svc.Get(t.Context(), o.UserID, o.ID)
	require.NoError(t, err)
	require.InDelta(t, testCacheTTL, f.ttl(t, o.ID), float64(5*time.Second))
}

// TestCacheHoldsOnlyProcessedOrders: the workers process an order without
// the cache knowing, so an order is cached only once processed; from then on
// only this service writes it, and caches each write before answering.
// A cached order, and the ETag made from its version, is therefore never
// older than its row.
func TestCacheHoldsOnlyProcessedOrders(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	ctx := t.Context()
	owner := f.user(t)

	o := f.order(t, owner)
	_, ok := f.entry(t, o.ID)
	require.False(t, ok, "a create caches nothing: the order is not processed yet")
	paid, err := f.svc.UpdateStatus(ctx, owner, o.ID, StatusPaid)
	require.NoError(t, err)
	_, err = f.svc.Get(ctx, owner, o.ID)
	require.NoError(t, err)
	_, ok = f.entry(t, o.ID)
	require.False(t, ok, "neither a change nor a read of an unprocessed order caches it")

	processOrder(t, f.fixture, o.ID, "task-"+o.ID.String())
	got, err := f.svc.Get(ctx, owner, o.ID)
	require.NoError(t, err)
	require.NotNil(t, got.ProcessedAt, "the read right after processing sees it")
	require.Equal(t, paid.Version+1, got.Version)
	entry, ok := f.entry(t, o.ID)
	require.True(t, ok, "processed: cached")
	require.Equal(t, got.Version, entry.Version)

	shipped, err := f.svc.UpdateStatus(ctx, owner, o.ID, StatusShipped)
	require.NoError(t, err)
	entry, _ = f.entry(t, o.ID)
	require.Equal(t, shipped.Version, entry.Version, "the change cached its version before answering")
	require.Equal(t, shipped.Version, f.stored(t, o.ID).Version)

	t.Run("an unprocessed entry is never served", func(t *testing.T) {
		fresh := f.order(t, owner)
		planted := storedOrder(fresh)
		planted.Items = []Item{item(99, 1, "1")}
		b, err := json.Marshal(planted)
		require.NoError(t, err)
		require.NoError(t, f.redis.Do(ctx, f.redis.B().Set().Key(f.key(fresh.ID)).Value("00000000000000000001"+string(cacheEntry(fresh, b))).Build()).Error())
		got, err := f.svc.Get(ctx, owner, fresh.ID)
		require.NoError(t, err)
		require.Equal(t, int64(1), got.Items[0].ProductID, "read from the database")
		encoded, err := f.svc.GetEncoded(ctx, owner, fresh.ID)
		require.NoError(t, err)
		require.NotContains(t, string(encoded.Body), `"product_id":99`, "read from the database")
	})
}

func TestCacheUpdatedByPatch(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	ctx := t.Context()
	owner := f.user(t)
	o := f.processed(t, owner)

	for _, status := range []Status{StatusPaid, StatusPaid, StatusShipped} { // the repeat is the no-op PATCH
		updated, err := f.svc.UpdateStatus(ctx, owner, o.ID, status)
		require.NoError(t, err)
		entry, ok := f.entry(t, o.ID)
		require.True(t, ok)
		require.Equal(t, status, entry.Status, "the PATCH wrote the new order before returning")
		require.True(t, updated.UpdatedAt.Equal(entry.UpdatedAt))
		require.Equal(t, updated.Version, entry.Version)
		got, err := f.svc.Get(ctx, owner, o.ID)
		require.NoError(t, err)
		require.Equal(t, status, got.Status)
	}

	_, err := f.svc.UpdateStatus(ctx, owner, o.ID, StatusCanceled)
	require.ErrorIs(t, err, apperr.ErrConflict)
	entry, _ := f.entry(t, o.ID)
	require.Equal(t, StatusShipped, entry.Status, "a refused change leaves the cache alone")
}

func TestCacheNotFilledByList(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	owner := f.user(t)
	var orders []Order
	for range 3 {
		o := f.processed(t, owner)
		f.forget(t, o.ID)
		orders = append(orders, o)
	}
	page, err := f.svc.List(t.Context(), owner, owner, ListQuery{Limit: 10})
	require.NoError(t, err)
	require.Len(t, page.Orders, 3)
	for _, o := range orders {
		_, ok := f.entry(t, o.ID)
		require.False(t, ok, "list wrote an entry for %s", o.ID)
	}
}

// gatedFills holds every Fill until its gate is opened: a reader that loaded
// the order before a PATCH then fills after it, deterministically.
type gatedFills struct {
	Cache
	gate    chan struct{}
	waiting chan struct{}
}

func (g *gatedFills) Fill(ctx context.Context, key, lease string, version int64, ttl time.Duration, value func() ([]byte, error)) {
	g.waiting <- struct{}{}
	<-g.gate
	g.Cache.Fill(ctx, key, lease, version, ttl, value)
}

// TestCacheStaleFillLosesToPatch is the race the leases exist for: a reader
// misses and loads PENDING from the database; a PATCH commits PAID and writes
// it to the cache; only then does the reader's fill arrive. The fill must
// not put PENDING back, not even when PAID has left the cache meanwhile
// (expired, evicted).
func TestCacheStaleFillLosesToPatch(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	ctx := t.Context()
	owner := f.user(t)
	o := f.processed(t, owner)
	f.forget(t, o.ID)

	gated := &gatedFills{gate: make(chan struct{}), waiting: make(chan struct{})}
	reader := cachedService(t, f.pool, f.prefix, func(c Cache) Cache { gated.Cache = c; return gated })

	readDone := make(chan Order, 1)
	go func() {
		got, err := reader.Get(ctx, owner, o.ID)
		if err != nil {
			t.Errorf("read: %v", err)
		}
		readDone <- got
	}()
	<-gated.waiting // the reader has the PENDING row and is about to fill

	patched, err := f.svc.UpdateStatus(ctx, owner, o.ID, StatusPaid)
	require.NoError(t, err)
	f.forget(t, o.ID) // PAID leaves the cache: nothing newer to compare the fill with
	close(gated.gate) // the stale fill arrives after the PATCH's write
	require.Equal(t, StatusPending, (<-readDone).Status, "the reader itself started before the PATCH")

	_, ok := f.entry(t, o.ID)
	require.False(t, ok, "the stale fill was refused")
	got, err := f.svc.Get(ctx, owner, o.ID)
	require.NoError(t, err)
	require.Equal(t, patched.Status, got.Status)
}

var statusRank = map[Status]int32{StatusPending: 0, StatusPaid: 1, StatusShipped: 2}

// TestCacheConcurrentReadersNeverSeeAnOlderStatus: readers on one instance,
// a writer on another, and a third party deleting the entries so that reads
// keep missing and filling while PATCHes land. Once a PATCH has returned,
// every read that starts afterwards must see that status or a later one.
func TestCacheConcurrentReadersNeverSeeAnOlderStatus(t *testing.T) {
	t.Parallel()
	f := newCachedFixture(t)
	ctx := t.Context()
	owner := f.user(t)
	readerInstance := cachedService(t, f.pool, f.prefix, nil)

	const nOrders, readersPerOrder = 10, 4
	ids := make([]uuid.UUID, nOrders)
	acknowledged := make([]atomic.Int32, nOrders) // status rank a PATCH has returned, per order
	for i := range ids {
		ids[i] = f.processed(t, owner).ID
	}

	var stop atomic.Bool
	var reads, violations atomic.Int64
	var wg sync.WaitGroup
	for i, id := range ids {
		for range readersPerOrder {
			wg.Go(func() {
				for !stop.Load() {
					floor := acknowledged[i].Load()
					got, err := readerInstance.Get(ctx, owner, id)
					if err != nil {
						t.Errorf("read: %v", err)
						return
					}
					reads.Add(1)
					if statusRank[got.Status] < floor {
						violations.Add(1)
						t.Errorf("order %s: read %s after a PATCH to rank %d had returned", id, got.Status, floor)
					}
				}
			})
		}
	}
	wg.Go(func() { // keep the entries missing, so fills race the PATCHes
		for !stop.Load() {
			for _, id := range ids {
				_ = f.redis.Do(ctx, f.redis.B().Del().Key(f.key(id)).Build()).Error()
			}
		}
	})

	for _, next := range []Status{StatusPaid, StatusShipped} {
		for i, id := range ids {
			time.Sleep(2 * time.Millisecond) // let reads and deletes interleave
			_, err := f.svc.UpdateStatus(ctx, owner, id, next)
			require.NoError(t, err)
			acknowledged[i].Store(statusRank[next])
		}
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d reads, %d saw an older status than an acknowledged PATCH", reads.Load(), violations.Load())
	require.Greater(t, reads.Load(), int64(nOrders*readersPerOrder), "the readers ran")
	for _, id := range ids {
		got, err := readerInstance.Get(ctx, owner, id)
		require.NoError(t, err)
		require.Equal(t, StatusShipped, got.Status, fmt.Sprint("order ", id))
	}
}
