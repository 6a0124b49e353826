package main

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

// orderEntry reads the cached order of id straight from Redis.
type orderEntry struct {
	redis  rueidis.Client
	prefix string
}

func (e orderEntry) key(id uuid.UUID) string { return e.prefix + ":cache:order:v3:" + id.String() }

// get returns what precedes the body (the version prefix and the entry's
// header line) and the cached order, or ok=false.
func (e orderEntry) get(t *testing.T, id uuid.UUID) (head string, o client.Order, ok bool) {
	t.Helper()
	raw, err := e.redis.Do(t.Context(), e.redis.B().Get().Key(e.key(id)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return "", client.Order{}, false
	}
	require.NoError(t, err)
	header, body, found := strings.Cut(raw[20:], "\n")
	require.True(t, found, "cached %q", raw)
	require.NoError(t, json.Unmarshal([]byte(body), &o), "cached %q", raw)
	return raw[:20] + header + "\n", o, true
}

func (e orderEntry) pttl(t *testing.T, id uuid.UUID) time.Duration {
	t.Helper()
	ms, err := e.redis.Do(t.Context(), e.redis.B().Pttl().Key(e.key(id)).Build()).AsInt64()
	require.NoError(t, err)
	return time.Duration(ms) * time.Millisecond
}

func (e orderEntry) set(t *testing.T, id uuid.UUID, raw string) {
	t.Helper()
	require.NoError(t, e.redis.Do(t.Context(), e.redis.B().Set().Key(e.key(id)).Value(raw).Build()).Error())
}

func (e orderEntry) del(t *testing.T, id uuid.UUID) {
	t.Helper()
	require.NoError(t, e.redis.Do(t.Context(), e.redis.B().Del().Key(e.key(id)).Build()).Error())
}

// markProcessed does to the orders what the workers' task handler does.
// Only processed orders are cached: no worker runs in these tests.
func markProcessed(t testing.TB, dbURL string, ids ...uuid.UUID) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background()) //nolint:errcheck // the test is done with it
	messageIDs := make([]string, len(ids))
	for i, id := range ids {
		messageIDs[i] = "task-" + id.String()
	}
	rows, err := db.New(conn).ProcessOrdersOnce(t.Context(), db.ProcessOrdersOnceParams{OrderIds: ids, Handler: "process_order", MessageIds: messageIDs})
	require.NoError(t, err)
	require.Len(t, rows, len(ids))
}

func getOrder(t *testing.T, s *contractServer, u testUser, id uuid.UUID) client.Order {
	t.Helper()
	r, err := s.Client.GetOrderWithResponse(t.Context(), id, nil, u.auth())
	require.Equal(t, 200, statusOf(t, r, err), "%s", r.Body)
	return *r.JSON200
}

func TestGetOrderReadsThroughRedis(t *testing.T) {
	t.Parallel()
	ts := startServer(t, map[string]string{"CACHE_TTL": "1h"})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: ts.RedisPrefix}
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	_, _, ok := cached.get(t, order.Id)
	require.False(t, ok, "POST /orders/ caches nothing: the order is not processed yet (the workers set processed_at)")
	getOrder(t, s, alice, order.Id)
	_, _, ok = cached.get(t, order.Id)
	require.False(t, ok, "nor does a read of it")

	markProcessed(t, ts.DBURL, order.Id)
	order = getOrder(t, s, alice, order.Id)
	version, entry, ok := cached.get(t, order.Id)
	require.True(t, ok, "a read of the processed order filled the cache")
	require.Equal(t, client.OrderStatusPENDING, entry.Status)
	require.Equal(t, order.Version, entry.Version)
	require.InDelta(t, time.Hour, cached.pttl(t, order.Id), float64(5*time.Second), "CACHE_TTL")

	t.Run("hit: the answer comes from Redis", func(t *testing.T) {
		planted := entry
		planted.Items = []client.OrderItem{item(4242, 1, "1")}
		b, err := json.Marshal(planted)
		require.NoError(t, err)
		cached.set(t, order.Id, version+string(b))
		require.Equal(t, int64(4242), getOrder(t, s, alice, order.Id).Items[0].ProductId)
	})

	t.Run("miss: the answer comes from PostgreSQL and fills", func(t *testing.T) {
		cached.del(t, order.Id)
		got := getOrder(t, s, alice, order.Id)
		require.Equal(t, order.Items, got.Items)
		_, entry, ok := cached.get(t, order.Id)
		require.True(t, ok)
		require.Equal(t, order.Items, entry.Items)
	})

	t.Run("PATCH writes the new order before answering", func(t *testing.T) {
		setStatus(t, s, alice, order.Id, client.OrderStatusPAID, 200)
		_, entry, ok := cached.get(t, order.Id)
		require.True(t, ok)
		require.Equal(t, client.OrderStatusPAID, entry.Status)
		require.Equal(t, client.OrderStatusPAID, getOrder(t, s, alice, order.Id).Status)
	})

	t.Run("lists write no entries", func(t *testing.T) {
		others := []client.Order{newOrder(t, s, alice), newOrder(t, s, alice)}
		for _, o := range others {
			cached.del(t, o.Id)
		}
		r, err := s.Client.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
		require.Equal(t, 200, statusOf(t, r, err))
		require.Len(t, *r.JSON200, 3)
		for _, o := range others {
			_, _, ok := cached.get(t, o.Id)
			require.False(t, ok, "GET /orders/user/ cached %s", o.Id)
		}
	})
}

// TestCachedBodyIsTheUncachedBody: a hit is served as the bytes the cache
// holds; they are the bytes a read from PostgreSQL answers, with the same
// ETag, and If-None-Match still gets its 304.
func TestCachedBodyIsTheUncachedBody(t *testing.T) {
	t.Parallel()
	ts := startServer(t, map[string]string{"CACHE_TTL": "1h"})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: ts.RedisPrefix}
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	markProcessed(t, ts.DBURL, order.Id)
	setStatus(t, s, alice, order.Id, client.OrderStatusPAID, 200) // a PATCH writes the entry

	read := func() (*client.GetOrderResponse, string) {
		r, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
		require.Equal(t, 200, statusOf(t, r, err), "%s", r.Body)
		return r, r.HTTPResponse.Header.Get("ETag")
	}
	_, _, ok := cached.get(t, order.Id)
	require.True(t, ok)
	hit, hitTag := read()
	cached.del(t, order.Id)
	miss, missTag := read() // from PostgreSQL; it fills the cache again
	_, _, ok = cached.get(t, order.Id)
	require.True(t, ok)
	refilled, refilledTag := read()

	require.Equal(t, string(miss.Body), string(hit.Body), "the written entry's body")
	require.Equal(t, string(miss.Body), string(refilled.Body), "the filled entry's body")
	require.Equal(t, missTag, hitTag)
	require.Equal(t, missTag, refilledTag)
	require.Equal(t, `"`+strconv.FormatInt(miss.JSON200.Version, 10)+`"`, hitTag)
	require.Equal(t, "application/json", hit.HTTPResponse.Header.Get("Content-Type"))

	tag := hitTag
	r, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, &client.GetOrderParams{IfNoneMatch: &tag}, alice.auth())
	require.Equal(t, 304, statusOf(t, r, err))
	require.Equal(t, hitTag, r.HTTPResponse.Header.Get("ETag"))
	require.Empty(t, r.Body)

	setStatus(t, s, alice, order.Id, client.OrderStatusSHIPPED, 200)
	r, err = s.Client.GetOrderWithResponse(t.Context(), order.Id, &client.GetOrderParams{IfNoneMatch: &tag}, alice.auth())
	require.Equal(t, 200, statusOf(t, r, err), "the order changed: the old ETag no longer matches")
	require.Equal(t, client.OrderStatusSHIPPED, r.JSON200.Status)
}

func TestCachedOrdersExpire(t *testing.T) {
	t.Parallel()
	ts := startServer(t, map[string]string{"CACHE_TTL": "300ms"})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: ts.RedisPrefix}
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	markProcessed(t, ts.DBURL, order.Id)
	getOrder(t, s, alice, order.Id)
	_, _, ok := cached.get(t, order.Id)
	require.True(t, ok)
	require.Eventually(t, func() bool { _, _, ok := cached.get(t, order.Id); return !ok }, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, order.Id, getOrder(t, s, alice, order.Id).Id, "expired: read from PostgreSQL")
	_, _, ok = cached.get(t, order.Id)
	require.True(t, ok, "and cached again")
}

// TestNoReadAfterPatchSeesTheOldStatus: readers on one API instance, PATCHes
// on another, a third party deleting the cache entries so reads keep racing
// fills against the PATCHes. Once a PATCH response is out, every GET that
// starts afterwards, on either instance, returns that status or a later one.
func TestNoReadAfterPatchSeesTheOldStatus(t *testing.T) {
	t.Parallel()
	cacheOn := map[string]string{"CACHE_TTL": "5m"}
	writerTS := startServer(t, cacheOn)
	cacheOn["DATABASE_URL"], cacheOn["REDIS_KEY_PREFIX"] = writerTS.DBURL, writerTS.RedisPrefix
	readerTS := startServer(t, cacheOn)
	writer := newContractServer(t, writerTS.URL, writerTS.DBURL, newObserved())
	reader := newContractServer(t, readerTS.URL, readerTS.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: writerTS.RedisPrefix}
	alice := newUser(t, writer)

	rank := map[client.OrderStatus]int32{client.OrderStatusPENDING: 0, client.OrderStatusPAID: 1, client.OrderStatusSHIPPED: 2}
	const nOrders, readersPerOrder = 6, 3
	orders := make([]client.Order, nOrders)
	acknowledged := make([]atomic.Int32, nOrders)
	for i := range orders {
		orders[i] = newOrder(t, writer, alice)
		markProcessed(t, writerTS.DBURL, orders[i].Id) // cacheable
	}

	var stop atomic.Bool
	var reads, stale atomic.Int64
	var wg sync.WaitGroup
	for i, o := range orders {
		for j := range readersPerOrder {
			instance := []*contractServer{reader, writer}[j%2]
			wg.Go(func() {
				for !stop.Load() {
					floor := acknowledged[i].Load()
					r, err := instance.Client.GetOrderWithResponse(t.Context(), o.Id, nil, alice.auth())
					if err != nil { // not require: off the test goroutine
						t.Errorf("GET order %s: %v", o.Id, err)
						return
					}
					if r.StatusCode() != 200 {
						t.Errorf("GET order %s: %s", o.Id, r.Body)
						return
					}
					reads.Add(1)
					if got := r.JSON200.Status; rank[got] < floor {
						stale.Add(1)
						t.Errorf("order %s: GET answered %s after a PATCH to rank %d had answered", o.Id, got, floor)
					}
				}
			})
		}
	}
	wg.Go(func() {
		for !stop.Load() {
			for _, o := range orders {
				_ = cached.redis.Do(t.Context(), cached.redis.B().Del().Key(cached.key(o.Id)).Build()).Error()
			}
			time.Sleep(time.Millisecond)
		}
	})
	for _, next := range []client.OrderStatus{client.OrderStatusPAID, client.OrderStatusSHIPPED} {
		for i, o := range orders {
			time.Sleep(5 * time.Millisecond)
			setStatus(t, writer, alice, o.Id, next, 200)
			acknowledged[i].Store(rank[next])
		}
	}
	time.Sleep(50 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d GETs during %d PATCHes; %d returned an older status than an answered PATCH", reads.Load(), 2*nOrders, stale.Load())
	require.Positive(t, reads.Load())
	for _, o := range orders {
		require.Equal(t, client.OrderStatusSHIPPED, getOrder(t, reader, alice, o.Id).Status)
	}
}

// TestCacheCanBeSwitchedOff: CACHE_TTL=0 reads every order from PostgreSQL.
func TestCacheCanBeSwitchedOff(t *testing.T) {
	t.Parallel()
	ts := startServer(t, map[string]string{"CACHE_TTL": "0s"})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: ts.RedisPrefix}
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	getOrder(t, s, alice, order.Id)
	_, _, ok := cached.get(t, order.Id)
	require.False(t, ok)
	keys, err := cached.redis.Do(t.Context(), cached.redis.B().Keys().Pattern(ts.RedisPrefix+":cache:*").Build()).AsStrSlice()
	require.NoError(t, err)
	require.Empty(t, keys, strings.Join(keys, ", "))
}
