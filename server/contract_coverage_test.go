package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// TestEveryDocumentedStatusIsReached drives every operation through the
// typed client (raw requests only where the client cannot express the bad
// input) and fails unless every (operation, status) pair openapi.yaml
// documents was observed by the validating transport, which has already
// checked each response against the spec and rejected undocumented statuses.
//
// 503 is an outage: the "database down" subtest refuses new connections to
// the test database and terminates the open ones. 500 is a bug: "database
// broken" drops the tables the code expects. /ready also answers 503 for a
// database without migrations.
func TestEveryDocumentedStatusIsReached(t *testing.T) {
	t.Parallel()
	seen := newObserved()
	// A group: t.Run returns once its parallel subtests are done, so the
	// assertion below sees everything they observed.
	t.Run("servers", func(t *testing.T) {
		t.Run("api", func(t *testing.T) {
			t.Parallel()
			reachAPIStatuses(t, seen)
		})
		t.Run("not migrated", func(t *testing.T) {
			t.Parallel()
			ts := startUnreadyServer(t, map[string]string{
				"DATABASE_URL":     testdb.NewEmpty(t),
				"MIGRATE_ON_START": "false",
			})
			s := newContractServer(t, ts.URL, ts.DBURL, seen)
			ready, err := s.Client.GetReadyWithResponse(t.Context())
			require.NoError(t, err)
			require.Equal(t, 503, ready.StatusCode(), "%s", ready.Body)
			require.NotNil(t, ready.ApplicationproblemJSON503.Checks)
			require.Contains(t, (*ready.ApplicationproblemJSON503.Checks)["migrations"], "pending")
			health, err := s.Client.GetHealthWithResponse(t.Context())
			require.NoError(t, err)
			require.Equal(t, 200, health.StatusCode())
			reachRevocationsUnknown(t, s) // server/contract_refresh_test.go
		})
		t.Run("database down", func(t *testing.T) {
			t.Parallel()
			reachDatabaseDownStatuses(t, seen)
		})
		t.Run("database broken", func(t *testing.T) {
			t.Parallel()
			reachBugStatuses(t, seen)
		})
		t.Run("rate limited", func(t *testing.T) {
			t.Parallel()
			reachTooManyRequests(t, seen) // server/ratelimit_test.go
		})
		t.Run("hashing busy", func(t *testing.T) {
			t.Parallel()
			reachHashingBusy(t, seen) // server/hashing_test.go
		})
		t.Run("asymmetric keys", func(t *testing.T) {
			t.Parallel()
			s := startContractServer(t, map[string]string{"JWT_PRIVATE_KEY_FILE": keyFile(t, newEd25519Key(t))}, seen)
			r, err := s.Client.GetJwksWithResponse(t.Context())
			require.Equal(t, 200, statusOf(t, r, err))
		})
		t.Run("keys and If-Match required", func(t *testing.T) {
			t.Parallel()
			reachRequiredHeaderStatuses(t, seen)
		})
	})
	require.Empty(t, seen.missing(contract(t)), "documented (operation, status) pairs never observed")
}

// statusCase is one request expected to get one documented status.
type statusCase struct {
	name string
	want int
	call func(t *testing.T) int
}

func runStatusCases(t *testing.T, cases []statusCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.call(t))
		})
	}
}

func reachAPIStatuses(t *testing.T, seen *observed) {
	s := startContractServer(t, nil, seen)
	c := s.Client
	alice, bob := newUser(t, s), newUser(t, s) // register 201, createToken 200
	order := newOrder(t, s, alice)             // createOrder 201
	orderKey, orderBody := uuid.NewString(), client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}
	keyed, err := c.CreateOrderWithResponse(t.Context(), withKey(orderKey), orderBody, alice.auth())
	require.Equal(t, 201, statusOf(t, keyed, err))
	toPay := newOrder(t, s, alice)
	canceled := newOrder(t, s, alice)
	setStatus(t, s, alice, canceled.Id, client.OrderStatusCANCELED, 200)
	unknown := uuid.New()

	runStatusCases(t, []statusCase{
		{"register/400 email taken in another case", 400, func(t *testing.T) int {
			r, err := c.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: upper(alice.Email), Password: testPassword})
			return statusOf(t, r, err)
		}},
		{"register/413", 413, func(t *testing.T) int {
			return s.do(t, "POST", "/register/", "application/json", oversized(`{"email":"`), "").Status
		}},
		{"register/422", 422, func(t *testing.T) int {
			r, err := c.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(uniqueEmail()), Password: "short"})
			return statusOf(t, r, err)
		}},
		{"createToken/401", 401, func(t *testing.T) int {
			r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: alice.Email, Password: "wrong-password"})
			return statusOf(t, r, err)
		}},
		{"createToken/400 unknown refresh token", 400, func(t *testing.T) int {
			r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{
				GrantType: client.TokenRequestGrantTypeRefreshToken, RefreshToken: strings.Repeat("A", 43),
			})
			return statusOf(t, r, err)
		}},
		{"createToken/413", 413, func(t *testing.T) int {
			r, err := c.CreateTokenWithBodyWithResponse(t.Context(), "application/x-www-form-urlencoded", oversized("username=a&password="))
			return statusOf(t, r, err)
		}},
		{"createToken/422", 422, func(t *testing.T) int {
			r, err := c.CreateTokenWithBodyWithResponse(t.Context(), "application/json", jsonBody(`{"username":%q,"password":%q}`, alice.Email, testPassword))
			return statusOf(t, r, err)
		}},
		{"revokeToken/200", 200, func(t *testing.T) int {
			r, err := c.RevokeTokenWithFormdataBodyWithResponse(t.Context(), client.RevokeRequest{Token: "not a token"})
			return statusOf(t, r, err)
		}},
		{"revokeToken/413", 413, func(t *testing.T) int {
			r, err := c.RevokeTokenWithBodyWithResponse(t.Context(), "application/x-www-form-urlencoded", oversized("token="))
			return statusOf(t, r, err)
		}},
		{"revokeToken/422", 422, func(t *testing.T) int {
			r, err := c.RevokeTokenWithBodyWithResponse(t.Context(), "application/json", jsonBody(`{"token":%q}`, alice.Refresh))
			return statusOf(t, r, err)
		}},
		{"getJwks/404 with a shared secret", 404, func(t *testing.T) int {
			r, err := c.GetJwksWithResponse(t.Context())
			return statusOf(t, r, err)
		}},
		{"createOrder/400", 400, func(t *testing.T) int {
			r, err := c.CreateOrderWithBodyWithResponse(t.Context(), nil, "application/json", jsonBody(`{"items":[`), alice.auth())
			return statusOf(t, r, err)
		}},
		{"createOrder/401", 401, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}})
			return statusOf(t, r, err)
		}},
		{"createOrder/413", 413, func(t *testing.T) int {
			r, err := c.CreateOrderWithBodyWithResponse(t.Context(), nil, "application/json", oversized(`{"items":"`), alice.auth())
			return statusOf(t, r, err)
		}},
		{"createOrder/422", 422, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{}}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"createOrder/201 replayed", 201, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), withKey(orderKey), orderBody, alice.auth())
			require.Equal(t, "true", r.HTTPResponse.Header.Get("Idempotent-Replayed"))
			return statusOf(t, r, err)
		}},
		{"createOrder/409 key in flight", 409, func(t *testing.T) int {
			key := uuid.NewString()
			holdKey(t, s.DBURL, alice.ID, key)
			r, err := c.CreateOrderWithResponse(t.Context(), withKey(key), orderBody, alice.auth())
			return statusOf(t, r, err)
		}},
		{"createOrder/422 key used for another body", 422, func(t *testing.T) int {
			other := client.CreateOrderRequest{Items: []client.OrderItem{item(2, 2, "2")}}
			r, err := c.CreateOrderWithResponse(t.Context(), withKey(orderKey), other, alice.auth())
			return statusOf(t, r, err)
		}},
		{"createOrder/422 malformed key", 422, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), withKey(strings.Repeat("k", 256)), orderBody, alice.auth())
			return statusOf(t, r, err)
		}},
		{"getOrder/304", 304, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, ifNoneMatch(etag(order.Version)), alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/412", 412, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, ifMatch(`"99"`), client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"getOrder/200", 200, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
			return statusOf(t, r, err)
		}},
		{"getOrder/401", 401, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, nil)
			return statusOf(t, r, err)
		}},
		{"getOrder/403", 403, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, nil, bob.auth())
			return statusOf(t, r, err)
		}},
		{"getOrder/404", 404, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), unknown, nil, alice.auth())
			return statusOf(t, r, err)
		}},
		{"getOrder/422", 422, func(t *testing.T) int {
			return s.do(t, "GET", "/orders/not-a-uuid/", "", nil, alice.Token).Status
		}},
		{"updateOrderStatus/200", 200, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), toPay.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/400", 400, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithBodyWithResponse(t.Context(), order.Id, nil, "application/json", jsonBody(`{"status":`), alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/401", 401, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID})
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/403", 403, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, bob.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/404", 404, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), unknown, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/409", 409, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), canceled.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/413", 413, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithBodyWithResponse(t.Context(), order.Id, nil, "application/json", oversized(`{"status":"`), alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/422", 422, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: "LOST"}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"listUserOrders/200", 200, func(t *testing.T) int {
			r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
			return statusOf(t, r, err)
		}},
		{"listUserOrders/401", 401, func(t *testing.T) int {
			r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, nil)
			return statusOf(t, r, err)
		}},
		{"listUserOrders/403", 403, func(t *testing.T) int {
			r, err := c.ListUserOrdersWithResponse(t.Context(), bob.ID, nil, alice.auth())
			return statusOf(t, r, err)
		}},
		{"listUserOrders/422", 422, func(t *testing.T) int {
			limit := 101
			r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, &client.ListUserOrdersParams{Limit: &limit}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"getHealth/200", 200, func(t *testing.T) int {
			r, err := c.GetHealthWithResponse(t.Context())
			return statusOf(t, r, err)
		}},
		{"getReady/200", 200, func(t *testing.T) int {
			r, err := c.GetReadyWithResponse(t.Context())
			return statusOf(t, r, err)
		}},
	})
}

// reachRequiredHeaderStatuses runs a server that requires Idempotency-Key
// on creates and If-Match on status changes, and leaves both out.
func reachRequiredHeaderStatuses(t *testing.T, seen *observed) {
	s := startContractServer(t, map[string]string{"IDEMPOTENCY_KEY_REQUIRED": "true", "REQUIRE_IF_MATCH": "true"}, seen)
	c := s.Client
	alice := newUser(t, s)
	r, err := c.CreateOrderWithResponse(t.Context(), withKey(uuid.NewString()), client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, alice.auth())
	require.Equal(t, 201, statusOf(t, r, err))
	order := *r.JSON201

	runStatusCases(t, []statusCase{
		{"createOrder/400 no key", 400, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/428", 428, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			return statusOf(t, r, err)
		}},
	})
}

// reachDatabaseDownStatuses breaks the server's database while it runs: new
// connections are refused and the open ones are terminated. Every operation
// that needs the database must then answer a documented 503 with
// Retry-After (an outage, not a bug), /ready 503, and liveness stays 200.
func reachDatabaseDownStatuses(t *testing.T, seen *observed) {
	s := startContractServer(t, nil, seen)
	c := s.Client
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	testdb.RefuseConnections(t, s.DBURL)

	runStatusCases(t, databaseCases(s, alice, order, 503, "new-user@example.com", func(t *testing.T, h http.Header) {
		require.Equal(t, "1", h.Get("Retry-After"), "an outage says when to retry")
	}))
	runStatusCases(t, []statusCase{
		{"getReady/503", 503, func(t *testing.T) int {
			r, err := c.GetReadyWithResponse(t.Context())
			require.NoError(t, err)
			require.Equal(t, "unreachable", (*r.ApplicationproblemJSON503.Checks)["postgres"])
			return r.StatusCode()
		}},
		{"getHealth/200", 200, func(t *testing.T) int {
			r, err := c.GetHealthWithResponse(t.Context())
			return statusOf(t, r, err)
		}},
	})
}

// reachBugStatuses gives the server a database whose tables are gone, as a
// schema that does not match the code would: that is a bug, so every
// operation that needs those tables answers a documented 500.
func reachBugStatuses(t *testing.T, seen *observed) {
	s := startContractServer(t, nil, seen)
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, s.DBURL)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close(context.Background())) })
	_, err = conn.Exec(ctx, "DROP TABLE orders, users, refresh_tokens, refresh_token_families CASCADE")
	require.NoError(t, err)

	runStatusCases(t, databaseCases(s, alice, order, 500, "another-user@example.com", func(t *testing.T, h http.Header) {
		require.Empty(t, h.Get("Retry-After"), "a bug is not an outage")
	}))
}

// databaseCases are one call of every operation that needs the database,
// each expected to answer want; check looks at the answer's headers.
func databaseCases(s *contractServer, alice testUser, order client.Order, want int, newEmail string, check func(*testing.T, http.Header)) []statusCase {
	c := s.Client
	answered := func(t *testing.T, resp *http.Response) int {
		t.Helper()
		check(t, resp.Header)
		return resp.StatusCode
	}
	name := func(op string) string { return fmt.Sprintf("%s/%d", op, want) }
	return []statusCase{
		{name("register"), want, func(t *testing.T) int {
			r, err := c.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(newEmail), Password: testPassword})
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
		{name("createToken"), want, func(t *testing.T) int {
			r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: alice.Email, Password: alice.Password})
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
		{name("revokeToken"), want, func(t *testing.T) int {
			r, err := c.RevokeTokenWithFormdataBodyWithResponse(t.Context(), client.RevokeRequest{Token: alice.Refresh})
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
		{name("createOrder"), want, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, alice.auth())
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
		{name("getOrder"), want, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
		{name("updateOrderStatus"), want, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
		{name("listUserOrders"), want, func(t *testing.T) int {
			r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
			require.NoError(t, err)
			return answered(t, r.HTTPResponse)
		}},
	}
}

func upper(s string) openapi_types.Email { return openapi_types.Email(strings.ToUpper(s)) }
