package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/money"
)

const testPassword = "correct-horse-battery"

// testUser is a registered user with a fresh bearer token and the refresh
// token handed out with it.
type testUser struct {
	ID       int64
	Email    string
	Password string
	Token    string
	Refresh  string
}

// auth authenticates a typed client call as u.
func (u testUser) auth() client.RequestEditorFn { return bearer(u.Token) }

func uniqueEmail() string { return "user-" + uuid.NewString()[:13] + "@example.com" }

// newUser registers a user with a unique email and logs in.
func newUser(t *testing.T, s *contractServer) testUser {
	t.Helper()
	email := uniqueEmail()
	r, err := s.Client.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(email), Password: testPassword})
	require.NoError(t, err)
	require.Equal(t, 201, r.StatusCode(), "register: %s", r.Body)
	tok := loginGrant(t, s, email, testPassword)
	return testUser{ID: r.JSON201.Id, Email: email, Password: testPassword, Token: tok.AccessToken, Refresh: tok.RefreshToken}
}

// login runs the password flow and returns the access token.
func login(t *testing.T, s *contractServer, email, password string) string {
	t.Helper()
	return loginGrant(t, s, email, password).AccessToken
}

// loginGrant runs the password flow and returns what it hands out.
func loginGrant(t *testing.T, s *contractServer, email, password string) client.Token {
	t.Helper()
	r, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: email, Password: password})
	require.NoError(t, err)
	require.Equal(t, 200, r.StatusCode(), "token: %s", r.Body)
	return *r.JSON200
}

// item is one order line; price is a decimal literal such as "2.9".
func item(productID int64, quantity int, price string) client.OrderItem {
	return client.OrderItem{ProductId: productID, Quantity: quantity, Price: money.MustParse(price)}
}

// newOrder creates an order for u (one line when items is empty).
func newOrder(t *testing.T, s *contractServer, u testUser, items ...client.OrderItem) client.Order {
	t.Helper()
	if len(items) == 0 {
		items = []client.OrderItem{item(1, 1, "9.99")}
	}
	r, err := s.Client.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: items}, u.auth())
	require.NoError(t, err)
	require.Equal(t, 201, r.StatusCode(), "create order: %s", r.Body)
	return *r.JSON201
}

// setStatus patches an order's status and requires want.
func setStatus(t *testing.T, s *contractServer, u testUser, id uuid.UUID, status client.OrderStatus, want int) *client.UpdateOrderStatusResponse {
	t.Helper()
	r, err := s.Client.UpdateOrderStatusWithResponse(t.Context(), id, nil, client.UpdateOrderStatusRequest{Status: status}, u.auth())
	require.NoError(t, err)
	require.Equal(t, want, r.StatusCode(), "patch to %s: %s", status, r.Body)
	return r
}

// statusOf is the status of a typed client call that must have completed.
func statusOf[R interface{ StatusCode() int }](t *testing.T, r R, err error) int {
	t.Helper()
	require.NoError(t, err)
	return r.StatusCode()
}

// oversized is a body just over the 1 MiB limit.
func oversized(prefix string) *bytes.Reader {
	return bytes.NewReader([]byte(prefix + strings.Repeat("x", 1<<20+1024)))
}

func jsonBody(format string, args ...any) *strings.Reader {
	return strings.NewReader(fmt.Sprintf(format, args...))
}
