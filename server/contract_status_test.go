package main

import (
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

var (
	pending  = client.OrderStatusPENDING
	paid     = client.OrderStatusPAID
	shipped  = client.OrderStatusSHIPPED
	canceled = client.OrderStatusCANCELED
)

// pathTo is how a new (PENDING) order reaches each status.
var pathTo = map[client.OrderStatus][]client.OrderStatus{
	pending:  nil,
	paid:     {paid},
	shipped:  {paid, shipped},
	canceled: {canceled},
}

// TestUpdateOrderStatusTransitions covers all 16 (from, to) pairs: the four
// documented transitions and staying put answer 200, everything else 409 and
// leaves the order as it was.
func TestUpdateOrderStatusTransitions(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	allowed := map[[2]client.OrderStatus]bool{
		{pending, paid}: true, {pending, canceled}: true, {paid, shipped}: true, {paid, canceled}: true,
	}
	for _, from := range []client.OrderStatus{pending, paid, shipped, canceled} {
		for _, to := range []client.OrderStatus{pending, paid, shipped, canceled} {
			want := 409
			if from == to || allowed[[2]client.OrderStatus{from, to}] {
				want = 200
			}
			t.Run(string(from)+" to "+string(to), func(t *testing.T) {
				order := newOrder(t, s, u)
				for _, step := range pathTo[from] {
					setStatus(t, s, u, order.Id, step, 200)
				}
				r := setStatus(t, s, u, order.Id, to, want)
				if want == 200 {
					require.Equal(t, to, r.JSON200.Status)
				} else {
					require.Contains(t, *r.ApplicationproblemJSON409.Detail, string(from))
				}
				got, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, nil, u.auth())
				require.NoError(t, err)
				require.Equal(t, 200, got.StatusCode(), "%s", got.Body)
				require.Equal(t, map[bool]client.OrderStatus{true: to, false: from}[want == 200], got.JSON200.Status)
			})
		}
	}
}

func TestUpdateOrderStatusToSameStatusIsNoOp(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	for _, status := range []client.OrderStatus{pending, paid, shipped, canceled} {
		t.Run(string(status), func(t *testing.T) {
			order := newOrder(t, s, u)
			for _, step := range pathTo[status] {
				setStatus(t, s, u, order.Id, step, 200)
			}
			before, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, nil, u.auth())
			require.NoError(t, err)

			r := setStatus(t, s, u, order.Id, status, 200)
			require.Equal(t, *before.JSON200, *r.JSON200, "a no-op must change nothing, updated_at included")
		})
	}
}

func TestUpdateOrderStatusTouchesUpdatedAt(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	order := newOrder(t, s, u)

	r := setStatus(t, s, u, order.Id, paid, 200)
	require.True(t, r.JSON200.UpdatedAt.After(order.UpdatedAt), "updated_at %s not after %s", r.JSON200.UpdatedAt, order.UpdatedAt)
	require.Equal(t, order.CreatedAt, r.JSON200.CreatedAt)
	require.Equal(t, order.Items, r.JSON200.Items)
	require.Equal(t, order.TotalPrice, r.JSON200.TotalPrice)
}

func TestUpdateOrderStatusErrors(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)
	order := newOrder(t, s, alice)

	// A group, so that the check below runs after every parallel request.
	t.Run("errors", func(t *testing.T) { testUpdateOrderStatusErrors(t, s, alice, bob, order) })

	// None of the failed requests changed the order.
	got, err := s.Client.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
	require.NoError(t, err)
	require.Equal(t, order, *got.JSON200)
}

func testUpdateOrderStatusErrors(t *testing.T, s *contractServer, alice, bob testUser, order client.Order) {
	t.Run("unknown status", func(t *testing.T) {
		t.Parallel()
		for _, status := range []string{"LOST", "paid", "", "REFUNDED"} {
			r, err := s.Client.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatus(status)}, alice.auth())
			require.NoError(t, err)
			require.Equal(t, 422, r.StatusCode(), "%q: %s", status, r.Body)
			require.Equal(t, []string{"body.status"}, fieldsOf(r.ApplicationproblemJSON422))
		}
	})
	t.Run("another user's order", func(t *testing.T) {
		t.Parallel()
		setStatus(t, s, bob, order.Id, canceled, 403)
	})
	t.Run("unknown order", func(t *testing.T) {
		t.Parallel()
		setStatus(t, s, alice, uuid.New(), paid, 404)
	})
	t.Run("malformed id", func(t *testing.T) {
		t.Parallel()
		r := s.do(t, "PATCH", "/orders/abc/", ctJSON, strings.NewReader(`{"status":"PAID"}`), alice.Token)
		require.Equal(t, 422, r.Status, "%s", r.Body)
	})
	t.Run("malformed body", func(t *testing.T) {
		t.Parallel()
		r := s.do(t, "PATCH", "/orders/"+order.Id.String()+"/", ctJSON, strings.NewReader(`{"status":`), alice.Token)
		require.Equal(t, 400, r.Status, "%s", r.Body)
	})
}
