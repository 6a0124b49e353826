package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

// TestCreateOrderComputesExactTotal checks the JSON text itself: a float
// total would read 5.800000000000001 there even when a float parser rounds
// it back to 5.8.
func TestCreateOrderComputesExactTotal(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	cases := []struct {
		name  string
		items []client.OrderItem
		total string
	}{
		{"3 x 0.1 + 0.2", []client.OrderItem{item(1, 3, "0.1"), item(2, 1, "0.2")}, "0.5"},
		{"2 x 2.9", []client.OrderItem{item(42, 2, "2.9")}, "5.8"},
		{"0.1 + 0.2", []client.OrderItem{item(1, 1, "0.1"), item(2, 1, "0.2")}, "0.3"},
		{"3 x 33.33", []client.OrderItem{item(1, 3, "33.33")}, "99.99"},
		{"one cent", []client.OrderItem{item(1, 1, "0.01")}, "0.01"},
		{"whole amounts", []client.OrderItem{item(1, 4, "2.5")}, "10"},
		{"largest line", []client.OrderItem{item(1, 10000, "1000000")}, "10000000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Client.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: tc.items}, u.auth())
			require.NoError(t, err)
			require.Equal(t, 201, r.StatusCode(), "%s", r.Body)
			require.Regexp(t, `"total_price":`+regexp.QuoteMeta(tc.total)+`[,}]`, string(r.Body))
			require.Equal(t, tc.total, r.JSON201.TotalPrice.String())

			// Reading the order back gives the same exact text.
			got := s.do(t, "GET", "/orders/"+r.JSON201.Id.String()+"/", "", nil, u.Token)
			require.Equal(t, 200, got.Status, "%s", got.Body)
			require.Regexp(t, `"total_price":`+regexp.QuoteMeta(tc.total)+`[,}]`, string(got.Body))
		})
	}
	t.Run("prices echo as plain numbers", func(t *testing.T) {
		r := s.do(t, "POST", "/orders/", ctJSON, strings.NewReader(`{"items":[{"product_id":7,"quantity":2,"price":2.90}]}`), u.Token)
		require.Equal(t, 201, r.Status, "%s", r.Body)
		require.Contains(t, string(r.Body), `"price":2.9`)
		require.Contains(t, string(r.Body), `"total_price":5.8`)
	})
}

func TestCreateOrderReturnsNewPendingOrder(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)
	before := time.Now().Add(-time.Minute)

	// The owner comes from the token, whatever the body claims.
	body := fmt.Sprintf(`{"user_id":%d,"items":[{"product_id":42,"quantity":2,"price":2.9}]}`, bob.ID)
	r, err := s.Client.CreateOrderWithBodyWithResponse(t.Context(), nil, ctJSON, strings.NewReader(body), alice.auth())
	require.NoError(t, err)
	require.Equal(t, 201, r.StatusCode(), "%s", r.Body)
	o := r.JSON201
	require.Equal(t, alice.ID, o.UserId)
	require.Equal(t, []client.OrderItem{item(42, 2, "2.9")}, o.Items)
	require.Equal(t, client.OrderStatusPENDING, o.Status)
	require.Nil(t, o.ProcessedAt)
	require.Contains(t, string(r.Body), `"processed_at":null`)
	require.True(t, o.CreatedAt.After(before), "created_at %s", o.CreatedAt)
	require.Equal(t, o.CreatedAt, o.UpdatedAt)

	got, err := s.Client.GetOrderWithResponse(t.Context(), o.Id, nil, bob.auth())
	require.NoError(t, err)
	require.Equal(t, 403, got.StatusCode(), "bob must not own alice's order: %s", got.Body)
}

func TestCreateOrderRejectsInvalidItems(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	lines := func(n int) string {
		return `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"product_id":1,"quantity":1,"price":1},`, n), ",") + `]}`
	}
	cases := []struct {
		name, body string
		wantField  string
	}{
		{"price with 3 decimals", `{"items":[{"product_id":1,"quantity":1,"price":0.125}]}`, "body.items[0].price"},
		{"price 0", `{"items":[{"product_id":1,"quantity":1,"price":0}]}`, "body.items[0].price"},
		{"negative price", `{"items":[{"product_id":1,"quantity":1,"price":-1}]}`, "body.items[0].price"},
		{"no items", lines(0), "body.items"},
		{"101 items", lines(101), "body.items"},
		{"quantity 0", `{"items":[{"product_id":1,"quantity":0,"price":1}]}`, "body.items[0].quantity"},
		{"quantity 10001", `{"items":[{"product_id":1,"quantity":10001,"price":1}]}`, "body.items[0].quantity"},
		{"missing product", `{"items":[{"quantity":1,"price":1}]}`, "body.items[0].product_id"},
		{"second line invalid", `{"items":[{"product_id":1,"quantity":1,"price":1},{"product_id":2,"quantity":1,"price":1.001}]}`, "body.items[1].price"},
		{"missing items", `{}`, "body.items"},
	}
	// A group, so that the check below runs after every parallel request.
	t.Run("rejected", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r, err := s.Client.CreateOrderWithBodyWithResponse(t.Context(), nil, ctJSON, strings.NewReader(tc.body), u.auth())
				require.NoError(t, err)
				require.Equal(t, 422, r.StatusCode(), "%s", r.Body)
				require.Contains(t, fieldsOf(r.ApplicationproblemJSON422), tc.wantField)
			})
		}
	})
	list, err := s.Client.ListUserOrdersWithResponse(t.Context(), u.ID, nil, u.auth())
	require.NoError(t, err)
	require.Empty(t, *list.JSON200, "a rejected order was stored")

	for _, body := range []string{lines(1), lines(100), `{"items":[{"product_id":1,"quantity":10000,"price":0.01}]}`} {
		r, err := s.Client.CreateOrderWithBodyWithResponse(t.Context(), nil, ctJSON, strings.NewReader(body), u.auth())
		require.NoError(t, err)
		require.Equal(t, 201, r.StatusCode(), "the limits themselves are accepted: %s", r.Body)
	}
}

func TestGetOrder(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)
	order := newOrder(t, s, alice, item(1, 2, "2.9"), item(2, 1, "0.1"))

	r, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
	require.NoError(t, err)
	require.Equal(t, 200, r.StatusCode(), "%s", r.Body)
	require.Equal(t, order, *r.JSON200)

	r, err = s.Client.GetOrderWithResponse(t.Context(), order.Id, nil, bob.auth())
	require.NoError(t, err)
	require.Equal(t, 403, r.StatusCode(), "%s", r.Body)
	require.NotContains(t, string(r.Body), "2.9", "a 403 must not leak the order")

	r, err = s.Client.GetOrderWithResponse(t.Context(), uuid.New(), nil, alice.auth())
	require.NoError(t, err)
	require.Equal(t, 404, r.StatusCode(), "%s", r.Body)

	raw := s.do(t, "GET", "/orders/12345/", "", nil, alice.Token)
	require.Equal(t, 422, raw.Status, "%s", raw.Body)
	p := problemOf(t, raw.Body)
	require.Equal(t, []string{"path.order_id"}, fieldsOf(&p))
}
