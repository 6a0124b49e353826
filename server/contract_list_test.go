package main

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

var nextLink = regexp.MustCompile(`^<([^>]+)>;\s*rel="next"$`)

// listPages follows the Link rel="next" headers from path to the last page,
// as a user of the API would, and returns every page.
func listPages(t *testing.T, s *contractServer, u testUser, path string) [][]client.Order {
	t.Helper()
	var pages [][]client.Order
	for path != "" {
		require.Less(t, len(pages), 100, "pagination does not end")
		r := s.do(t, "GET", path, "", nil, u.Token)
		require.Equal(t, 200, r.Status, "%s: %s", path, r.Body)
		var page []client.Order
		require.NoError(t, json.Unmarshal(r.Body, &page))
		pages = append(pages, page)
		path = ""
		if link := r.Header.Get("Link"); link != "" {
			m := nextLink.FindStringSubmatch(link)
			require.NotNil(t, m, "Link header %q", link)
			path = m[1]
		}
	}
	return pages
}

func ids(orders []client.Order) []uuid.UUID {
	out := make([]uuid.UUID, len(orders))
	for i, o := range orders {
		out[i] = o.Id
	}
	return out
}

// newOrders creates n orders for u and returns their ids newest first.
func newOrders(t *testing.T, s *contractServer, u testUser, n int) []uuid.UUID {
	t.Helper()
	out := make([]uuid.UUID, n)
	for i := range n {
		out[n-1-i] = newOrder(t, s, u).Id
	}
	return out
}

func TestListUserOrdersNewestFirstAndOnlyOwn(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)
	aliceOrders := newOrders(t, s, alice, 3)
	newOrders(t, s, bob, 2)

	r, err := s.Client.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
	require.NoError(t, err)
	require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
	require.Equal(t, aliceOrders, ids(*r.JSON200))
	require.Empty(t, r.HTTPResponse.Header.Get("Link"), "one page only")
	for _, o := range *r.JSON200 {
		require.Equal(t, alice.ID, o.UserId)
	}
	require.True(t, slices.IsSortedFunc(*r.JSON200, func(a, b client.Order) int { return b.CreatedAt.Compare(a.CreatedAt) }))

	other, err := s.Client.ListUserOrdersWithResponse(t.Context(), bob.ID, nil, alice.auth())
	require.NoError(t, err)
	require.Equal(t, 403, other.StatusCode(), "%s", other.Body)

	empty := newUser(t, s)
	raw := s.do(t, "GET", "/orders/user/"+itoa(empty.ID)+"/", "", nil, empty.Token)
	require.Equal(t, 200, raw.Status)
	require.JSONEq(t, `[]`, string(raw.Body), "no orders is an empty array, not null")
}

func TestListUserOrdersPaginatesThroughLinks(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	cases := []struct {
		orders, limit int
		pageSizes     []int
	}{
		{7, 3, []int{3, 3, 1}},
		{6, 3, []int{3, 3}}, // an exact multiple ends without an empty page
		{2, 1, []int{1, 1}},
		{3, 100, []int{3}},
		{0, 5, []int{0}},
	}
	for _, tc := range cases {
		t.Run(itoa(int64(tc.orders))+" by "+itoa(int64(tc.limit)), func(t *testing.T) {
			u := newUser(t, s)
			want := newOrders(t, s, u, tc.orders)

			pages := listPages(t, s, u, "/orders/user/"+itoa(u.ID)+"/?limit="+itoa(int64(tc.limit)))
			var got []uuid.UUID
			var sizes []int
			for _, p := range pages {
				sizes = append(sizes, len(p))
				got = append(got, ids(p)...)
			}
			require.Equal(t, tc.pageSizes, sizes)
			if len(want) == 0 {
				want = nil
			}
			require.Equal(t, want, got, "every order exactly once, newest first")
		})
	}
}

func TestListUserOrdersFiltersByStatus(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	all := newOrders(t, s, u, 5) // newest first
	setStatus(t, s, u, all[0], paid, 200)
	setStatus(t, s, u, all[3], paid, 200)
	setStatus(t, s, u, all[1], canceled, 200)

	cases := []struct {
		status client.OrderStatus
		want   []uuid.UUID
	}{
		{paid, []uuid.UUID{all[0], all[3]}},
		{canceled, []uuid.UUID{all[1]}},
		{pending, []uuid.UUID{all[2], all[4]}},
		{shipped, nil},
	}
	for _, tc := range cases {
		t.Run(string(tc.status), func(t *testing.T) {
			pages := listPages(t, s, u, "/orders/user/"+itoa(u.ID)+"/?limit=1&status="+string(tc.status))
			var got []uuid.UUID
			for _, p := range pages {
				for _, o := range p {
					require.Equal(t, tc.status, o.Status, "the filter holds on every page")
				}
				got = append(got, ids(p)...)
			}
			require.Equal(t, tc.want, got)
		})
	}
}

func TestListUserOrdersPageSizeLimits(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	all := newOrders(t, s, u, 51)
	list := func(limit *int) *client.ListUserOrdersResponse {
		r, err := s.Client.ListUserOrdersWithResponse(t.Context(), u.ID, &client.ListUserOrdersParams{Limit: limit}, u.auth())
		require.NoError(t, err)
		return r
	}
	limit := func(n int) *int { return &n }

	r := list(nil)
	require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
	require.Equal(t, all[:50], ids(*r.JSON200), "default page size is 50")
	require.Contains(t, r.HTTPResponse.Header.Get("Link"), "limit=50")

	r = list(limit(100))
	require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
	require.Equal(t, all, ids(*r.JSON200))
	require.Empty(t, r.HTTPResponse.Header.Get("Link"))

	for _, n := range []int{0, 101} {
		r = list(limit(n))
		require.Equal(t, 422, r.StatusCode(), "limit=%d: %s", n, r.Body)
		require.Equal(t, []string{"query.limit"}, fieldsOf(r.ApplicationproblemJSON422))
	}

	// Not a cursor, and cursors naming times beyond int64's ends (which
	// once wrapped around to the first page).
	for _, cursor := range []string{
		"bm90LWEtY3Vyc29y",
		base64.RawURLEncoding.EncodeToString([]byte("-9223372036854775808." + all[0].String())),
		base64.RawURLEncoding.EncodeToString([]byte("9223372036854775807." + all[0].String())),
	} {
		r, err := s.Client.ListUserOrdersWithResponse(t.Context(), u.ID, &client.ListUserOrdersParams{Cursor: &cursor}, u.auth())
		require.NoError(t, err)
		require.Equal(t, 422, r.StatusCode(), "cursor %s: %s", cursor, r.Body)
		require.Equal(t, []string{"query.cursor"}, fieldsOf(r.ApplicationproblemJSON422))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
