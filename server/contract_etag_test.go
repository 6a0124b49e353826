package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testkit/testredis"
)

func ifNoneMatch(v string) *client.GetOrderParams { return &client.GetOrderParams{IfNoneMatch: &v} }
func ifMatch(v string) *client.UpdateOrderStatusParams {
	return &client.UpdateOrderStatusParams{IfMatch: &v}
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

func TestOrdersCarryTheirVersionAsETag(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice := newUser(t, s)

	created, err := s.Client.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, alice.auth())
	require.Equal(t, 201, statusOf(t, created, err), "%s", created.Body)
	id := created.JSON201.Id
	require.Equal(t, `"1"`, created.HTTPResponse.Header.Get("ETag"))

	got, err := s.Client.GetOrderWithResponse(t.Context(), id, nil, alice.auth())
	require.Equal(t, 200, statusOf(t, got, err))
	require.Equal(t, `"1"`, got.HTTPResponse.Header.Get("ETag"))

	for i, status := range []client.OrderStatus{paid, shipped} {
		r := setStatus(t, s, alice, id, status, 200)
		require.Equal(t, int64(i+2), r.JSON200.Version, "every change is a new version")
		require.Equal(t, etag(r.JSON200.Version), r.HTTPResponse.Header.Get("ETag"), "the header and the body agree")
	}
	r := setStatus(t, s, alice, id, shipped, 200) // a no-op
	require.Equal(t, `"3"`, r.HTTPResponse.Header.Get("ETag"), "a no-op PATCH changes no version")

	list := ordersOf(t, s, alice)
	require.Len(t, list, 1)
	require.Equal(t, int64(3), list[0].Version, "a list entry carries the version for If-Match")
}

func TestConditionalGet(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)
	order := newOrder(t, s, alice)
	setStatus(t, s, alice, order.Id, paid, 200) // version 2

	cases := []struct {
		name, header string
		who          testUser
		id           uuid.UUID
		want         int
	}{
		{"current", `"2"`, alice, order.Id, 304},
		{"current, weak", `W/"2"`, alice, order.Id, 304},
		{"among others", `"1", "7", "2"`, alice, order.Id, 304},
		{"any", `*`, alice, order.Id, 304},
		{"stale", `"1"`, alice, order.Id, 200},
		{"not ours", `"abc"`, alice, order.Id, 200},
		{"unquoted", `2`, alice, order.Id, 200},
		{"another user's order", `"2"`, bob, order.Id, 403},
		{"another user's order, any", `*`, bob, order.Id, 403},
		{"no such order", `*`, alice, uuid.New(), 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Client.GetOrderWithResponse(t.Context(), tc.id, ifNoneMatch(tc.header), tc.who.auth())
			require.Equal(t, tc.want, statusOf(t, r, err), "%s", r.Body)
			switch tc.want {
			case 304:
				require.Empty(t, r.Body, "a 304 has no body")
				require.Equal(t, `"2"`, r.HTTPResponse.Header.Get("ETag"))
			case 200:
				require.Equal(t, `"2"`, r.HTTPResponse.Header.Get("ETag"))
				require.Equal(t, paid, r.JSON200.Status)
			}
		})
	}
}

// TestConditionalGetFromTheCache: with the order cached, a conditional GET
// is answered from Redis (the planted entry's version decides), and the
// ownership check still applies to it.
func TestConditionalGetFromTheCache(t *testing.T) {
	t.Parallel()
	ts := startServer(t, map[string]string{"CACHE_TTL": "1h"})
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	cached := orderEntry{redis: testredis.Client(t), prefix: ts.RedisPrefix}
	alice, bob := newUser(t, s), newUser(t, s)
	order := newOrder(t, s, alice)
	markProcessed(t, ts.DBURL, order.Id)
	r, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, ifNoneMatch(`"1"`), alice.auth())
	require.Equal(t, 200, statusOf(t, r, err), "processing made version 2: %s", r.Body)
	require.Equal(t, `"2"`, r.HTTPResponse.Header.Get("ETag"), "read right after processing, never from an older cached copy")

	version, entry, ok := cached.get(t, order.Id)
	require.True(t, ok, "the read cached the processed order")
	require.Equal(t, int64(2), entry.Version, "with its version")

	// Plant version 7: only the cache knows it.
	entry.Version = 7
	b, err := json.Marshal(entry)
	require.NoError(t, err)
	head := strings.Replace(version, " 2 P\n", " 7 P\n", 1) // the entry's header line names the version too
	require.NotEqual(t, version, head, "header line %q", version)
	cached.set(t, order.Id, head+string(b))

	r, err = s.Client.GetOrderWithResponse(t.Context(), order.Id, ifNoneMatch(`"7"`), alice.auth())
	require.Equal(t, 304, statusOf(t, r, err), "answered from the cache: %s", r.Body)
	require.Equal(t, `"7"`, r.HTTPResponse.Header.Get("ETag"))
	r, err = s.Client.GetOrderWithResponse(t.Context(), order.Id, ifNoneMatch(`"7"`), bob.auth())
	require.Equal(t, 403, statusOf(t, r, err), "never a 304 for another user's order: %s", r.Body)

	patched := setStatus(t, s, alice, order.Id, paid, 200)
	require.Equal(t, `"3"`, patched.HTTPResponse.Header.Get("ETag"))
	_, entry, ok = cached.get(t, order.Id)
	require.True(t, ok)
	require.Equal(t, int64(3), entry.Version, "the PATCH cached its version before answering")
	r, err = s.Client.GetOrderWithResponse(t.Context(), order.Id, ifNoneMatch(`"3"`), alice.auth())
	require.Equal(t, 304, statusOf(t, r, err), "%s", r.Body)
}

func TestConditionalPatch(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)

	cases := []struct {
		name, header string
		who          testUser
		unknown      bool
		want         int
	}{
		{"current", `"1"`, alice, false, 200},
		{"among others", `"5", "1"`, alice, false, 200},
		{"any", `*`, alice, false, 200},
		{"stale", `"2"`, alice, false, 412},
		{"weak never matches", `W/"1"`, alice, false, 412},
		{"not ours", `"abc"`, alice, false, 412},
		{"another user's order", `"1"`, bob, false, 403},
		{"no such order", `*`, alice, true, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			order := newOrder(t, s, alice)
			id := order.Id
			if tc.unknown {
				id = uuid.New()
			}
			r, err := s.Client.UpdateOrderStatusWithResponse(t.Context(), id, ifMatch(tc.header), client.UpdateOrderStatusRequest{Status: paid}, tc.who.auth())
			require.Equal(t, tc.want, statusOf(t, r, err), "%s", r.Body)
			after := getOrder(t, s, alice, order.Id)
			if tc.want == 200 {
				require.Equal(t, paid, after.Status)
				require.Equal(t, `"2"`, r.HTTPResponse.Header.Get("ETag"))
				return
			}
			require.Equal(t, pending, after.Status, "nothing changed")
			require.Equal(t, int64(1), after.Version, "nothing changed")
		})
	}
}

func TestIfMatchRequired(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"REQUIRE_IF_MATCH": "true"}, nil)
	alice := newUser(t, s)
	order := newOrder(t, s, alice)

	r, err := s.Client.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: paid}, alice.auth())
	require.Equal(t, 428, statusOf(t, r, err), "%s", r.Body)
	require.Contains(t, *r.ApplicationproblemJSON428.Detail, "If-Match")
	require.Equal(t, pending, getOrder(t, s, alice, order.Id).Status)

	r, err = s.Client.UpdateOrderStatusWithResponse(t.Context(), order.Id, ifMatch(etag(order.Version)), client.UpdateOrderStatusRequest{Status: paid}, alice.auth())
	require.Equal(t, 200, statusOf(t, r, err), "%s", r.Body)
}

// TestConcurrentPatchesWithTheSameIfMatch: two clients read version 1 and
// change the order at once: one gets 200, the other 412, whatever they
// asked for.
func TestConcurrentPatchesWithTheSameIfMatch(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice := newUser(t, s)
	for range 10 {
		order := newOrder(t, s, alice)
		statuses := make([]int, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, to := range []client.OrderStatus{paid, canceled} {
			wg.Go(func() {
				<-start
				r, err := s.Client.UpdateOrderStatusWithResponse(t.Context(), order.Id, ifMatch(`"1"`), client.UpdateOrderStatusRequest{Status: to}, alice.auth())
				if err != nil { // not require: off the test goroutine
					t.Errorf("PATCH to %s: %v", to, err)
					return
				}
				statuses[i] = r.StatusCode()
			})
		}
		close(start)
		wg.Wait()
		require.ElementsMatch(t, []int{200, 412}, statuses)
		require.Equal(t, int64(2), getOrder(t, s, alice, order.Id).Version)
	}
}
