package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/testdb"
)

// TestEveryDocumentedStatusIsReached drives every operation through the
// typed client (raw requests only where the client cannot express the bad
// input) and fails unless every (operation, status) pair openapi.yaml
// documents was observed by the validating transport, which has already
// checked each response against the spec and rejected undocumented statuses.
//
// 500 is reachable only through a broken database: the "database down"
// subtest refuses new connections to the test database and terminates the
// open ones. 503 of /ready needs a database without migrations.
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
			s := startContractServer(t, map[string]string{
				"DATABASE_URL":     testdb.NewEmpty(t),
				"MIGRATE_ON_START": "false",
			}, seen)
			ready, err := s.Client.GetReadyWithResponse(t.Context())
			require.NoError(t, err)
			require.Equal(t, 503, ready.StatusCode(), "%s", ready.Body)
			require.NotNil(t, ready.ApplicationproblemJSON503.Checks)
			require.Contains(t, (*ready.ApplicationproblemJSON503.Checks)["migrations"], "pending")
			health, err := s.Client.GetHealthWithResponse(t.Context())
			require.NoError(t, err)
			require.Equal(t, 200, health.StatusCode())
		})
		t.Run("database down", func(t *testing.T) {
			t.Parallel()
			reachDatabaseDownStatuses(t, seen)
		})
		t.Run("rate limited", func(t *testing.T) {
			t.Parallel()
			reachTooManyRequests(t, seen) // server/ratelimit_test.go
		})
		t.Run("hashing busy", func(t *testing.T) {
			t.Parallel()
			reachHashingBusy(t, seen) // server/hashing_test.go
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
		{"createToken/413", 413, func(t *testing.T) int {
			r, err := c.CreateTokenWithBodyWithResponse(t.Context(), "application/x-www-form-urlencoded", oversized("username=a&password="))
			return statusOf(t, r, err)
		}},
		{"createToken/422", 422, func(t *testing.T) int {
			r, err := c.CreateTokenWithBodyWithResponse(t.Context(), "application/json", jsonBody(`{"username":%q,"password":%q}`, alice.Email, testPassword))
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
// that needs the database must then answer a documented 500 (503 for /ready),
// and liveness must stay 200.
func reachDatabaseDownStatuses(t *testing.T, seen *observed) {
	s := startContractServer(t, nil, seen)
	c := s.Client
	alice := newUser(t, s)
	order := newOrder(t, s, alice)
	makeDatabaseUnavailable(t, s.DBURL)

	runStatusCases(t, []statusCase{
		{"register/500", 500, func(t *testing.T) int {
			r, err := c.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: "new-user@example.com", Password: testPassword})
			return statusOf(t, r, err)
		}},
		{"createToken/500", 500, func(t *testing.T) int {
			r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: alice.Email, Password: alice.Password})
			return statusOf(t, r, err)
		}},
		{"createOrder/500", 500, func(t *testing.T) int {
			r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"getOrder/500", 500, func(t *testing.T) int {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
			return statusOf(t, r, err)
		}},
		{"updateOrderStatus/500", 500, func(t *testing.T) int {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, alice.auth())
			return statusOf(t, r, err)
		}},
		{"listUserOrders/500", 500, func(t *testing.T) int {
			r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
			return statusOf(t, r, err)
		}},
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

// makeDatabaseUnavailable refuses new connections to the database of dbURL
// and terminates the open ones, waiting until they are gone. The database
// itself stays, so the harness still drops it at the end of the test.
func makeDatabaseUnavailable(t *testing.T, dbURL string) {
	t.Helper()
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	name := strings.TrimPrefix(u.Path, "/")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testdb.AdminURL())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close(context.Background())) })
	_, err = conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" ALLOW_CONNECTIONS false")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var left int
		err := conn.QueryRow(ctx, `
			WITH killed AS (
				SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
			)
			SELECT count(*) FROM killed`, name).Scan(&left)
		return err == nil && left == 0
	}, 10*time.Second, 20*time.Millisecond, "connections to %s did not end", name)
}

func upper(s string) openapi_types.Email { return openapi_types.Email(strings.ToUpper(s)) }
