package main

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/api"
)

// securedTargets are the operations openapi.yaml secures, as raw requests
// ({order} and {user} from a brokenFixture).
var securedTargets = []brokenCase{
	{name: "createOrder", method: "POST", path: "/orders/", ctype: ctJSON, body: `{"items":[{"product_id":1,"quantity":1,"price":1}]}`},
	{name: "getOrder", method: "GET", path: "/orders/{order}/"},
	{name: "updateOrderStatus", method: "PATCH", path: "/orders/{order}/", ctype: ctJSON, body: `{"status":"PAID"}`},
	{name: "listUserOrders", method: "GET", path: "/orders/user/{user}/"},
}

// TestSecuredRoutesFollowTheSpec: the operations the authenticator decides
// for are exactly those that declare security, under Echo's route names.
func TestSecuredRoutesFollowTheSpec(t *testing.T) {
	t.Parallel()
	spec, err := api.GetSpec()
	require.NoError(t, err)
	require.Equal(t, map[operationKey]bool{
		{"POST", "/orders/"}:              true,
		{"GET", "/orders/:order_id/"}:     true,
		{"PATCH", "/orders/:order_id/"}:   true,
		{"GET", "/orders/user/:user_id/"}: true,
	}, securedRoutes(spec))

	optional := &openapi3.T{Paths: openapi3.NewPaths(openapi3.WithPath("/a/{id}/", &openapi3.PathItem{
		Get:  &openapi3.Operation{Security: &openapi3.SecurityRequirements{{"bearer": {}}, {}}},
		Post: &openapi3.Operation{},
	})), Security: openapi3.SecurityRequirements{{"bearer": {}}}}
	require.Equal(t, map[operationKey]bool{{"POST", "/a/:id/"}: true}, securedRoutes(optional),
		"an empty requirement makes an operation optional; the document's security applies to the others")
}

// TestBadCredentialsSpendTheAddressBudget: failed authentication draws on
// the client address's budget, whatever the kind of bad credentials, so a
// flood of bad tokens meets 429; a user with a valid token from the same
// address keeps their own budget.
func TestBadCredentialsSpendTheAddressBudget(t *testing.T) {
	t.Parallel()
	const budget = 6
	s := startContractServer(t, map[string]string{"RATE_LIMIT_ANONYMOUS": strconv.Itoa(budget) + "/1h"}, nil)
	u := newUser(t, s) // registration and login draw on the credential budgets, not this one
	order := newOrder(t, s, u)
	fixture := brokenFixture{s: s, user: u, order: order.Id.String()}
	credentials := [][]string{
		{"Bearer x"},
		{"Bearer " + u.Token + "x"},
		{"bearer " + u.Token, "Bearer " + u.Token}, // two headers, both valid
		{"Basic dXNlcjpwYXNzd29yZA=="},
		{"Bearer"},
		nil, // no header
	}
	for i := range 3 * budget {
		target := securedTargets[i%len(securedTargets)]
		req := fixture.request(t, target)
		for _, v := range credentials[i%len(credentials)] {
			req.Header.Add("Authorization", v)
		}
		r := s.send(t, req)
		if i < budget {
			require.Equal(t, http.StatusUnauthorized, r.Status, "request %d (%s): %s", i+1, target.name, r.Body)
			require.Equal(t, "Bearer", r.Header.Get("WWW-Authenticate"))
			require.Equal(t, strconv.Itoa(budget-1-i), r.Header.Get("RateLimit-Remaining"), "request %d", i+1)
			continue
		}
		requireTooMany(t, r.Status, r.Header, budget)
	}
	r := s.do(t, "GET", "/orders/"+order.Id.String()+"/", "", nil, u.Token)
	require.Equal(t, http.StatusOK, r.Status, "a valid token from the same address: %s", r.Body)
}

// TestTwoAuthorizationHeadersAreRefused: which of two headers counts is a
// guess that proxies and libraries make differently, so neither does.
func TestTwoAuthorizationHeadersAreRefused(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	other := newUser(t, f.s)
	cases := []struct {
		name    string
		headers []string
		want    int
	}{
		{"one valid", []string{"Bearer {token}"}, http.StatusOK},
		{"scheme in lower case", []string{"bearer {token}"}, http.StatusOK},
		{"the same valid token twice", []string{"Bearer {token}", "Bearer {token}"}, http.StatusUnauthorized},
		{"valid, then invalid", []string{"Bearer {token}", "Bearer x"}, http.StatusUnauthorized},
		{"invalid, then valid", []string{"Bearer x", "Bearer {token}"}, http.StatusUnauthorized},
		{"two users", []string{"Bearer {token}", "Bearer " + other.Token}, http.StatusUnauthorized},
	}
	for _, target := range securedTargets {
		for _, tc := range cases {
			t.Run(target.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				req := f.request(t, target)
				for _, h := range tc.headers {
					req.Header.Add("Authorization", f.expand().Replace(h))
				}
				r := f.s.send(t, req)
				if tc.want == http.StatusOK {
					require.Less(t, r.Status, 300, "%s", r.Body)
					return
				}
				require.Equal(t, tc.want, r.Status, "%s", r.Body)
				require.Equal(t, "Bearer", r.Header.Get("WWW-Authenticate"))
			})
		}
	}
}
