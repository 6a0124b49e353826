package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

// requireTooMany checks a 429 as openapi.yaml documents it: problem+json
// (the validating transport checked the body), Retry-After, and the
// RateLimit-* headers of the spent budget.
func requireTooMany(t *testing.T, status int, h http.Header, limit int) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, status)
	retry, err := strconv.Atoi(h.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", h.Get("Retry-After"))
	require.GreaterOrEqual(t, retry, 1)
	require.Equal(t, strconv.Itoa(limit), h.Get("RateLimit-Limit"))
	require.Equal(t, "0", h.Get("RateLimit-Remaining"))
	reset, err := strconv.Atoi(h.Get("RateLimit-Reset"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, reset, retry)
}

// reachTooManyRequests drives every budgeted operation into a 429 through
// the validating transport, which checks each 429 against openapi.yaml and
// records it in seen.
func reachTooManyRequests(t *testing.T, seen *observed) {
	t.Helper()
	const authBudget, userBudget, anonymousBudget = 4, 3, 2
	s := startContractServer(t, map[string]string{
		"RATE_LIMIT_AUTH":      strconv.Itoa(authBudget) + "/1h",
		"RATE_LIMIT_USER":      strconv.Itoa(userBudget) + "/1h",
		"RATE_LIMIT_ANONYMOUS": strconv.Itoa(anonymousBudget) + "/1h",
	}, seen)
	c := s.Client
	alice := newUser(t, s) // register + token: 2 of the address's 4
	register := func() (*client.RegisterResponse, error) {
		return c.RegisterWithResponse(t.Context(), client.RegisterRequest{Email: openapi_types.Email(uniqueEmail()), Password: testPassword})
	}
	for range authBudget - 2 {
		r, err := register()
		require.Equal(t, 201, statusOf(t, r, err))
	}
	order := newOrder(t, s, alice) // 1 of alice's 3
	get, err := c.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
	require.Equal(t, 200, statusOf(t, get, err))
	setStatus(t, s, alice, order.Id, client.OrderStatusPAID, 200)
	for range anonymousBudget {
		jwks, err := c.GetJwksWithResponse(t.Context())
		require.Equal(t, 404, statusOf(t, jwks, err))
	}

	cases := []struct {
		op    string
		limit int
		call  func() (int, http.Header)
	}{
		{"register", authBudget, func() (int, http.Header) {
			r, err := register()
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"createToken", authBudget, func() (int, http.Header) {
			r, err := c.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{Username: alice.Email, Password: alice.Password})
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"revokeToken", authBudget, func() (int, http.Header) {
			r, err := c.RevokeTokenWithFormdataBodyWithResponse(t.Context(), client.RevokeRequest{Token: alice.Refresh})
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"getJwks", anonymousBudget, func() (int, http.Header) {
			r, err := c.GetJwksWithResponse(t.Context())
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"createOrder", userBudget, func() (int, http.Header) {
			r, err := c.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, alice.auth())
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"getOrder", userBudget, func() (int, http.Header) {
			r, err := c.GetOrderWithResponse(t.Context(), order.Id, nil, alice.auth())
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"updateOrderStatus", userBudget, func() (int, http.Header) {
			r, err := c.UpdateOrderStatusWithResponse(t.Context(), order.Id, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusSHIPPED}, alice.auth())
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
		{"listUserOrders", userBudget, func() (int, http.Header) {
			r, err := c.ListUserOrdersWithResponse(t.Context(), alice.ID, nil, alice.auth())
			return statusOf(t, r, err), r.HTTPResponse.Header
		}},
	}
	for _, tc := range cases {
		t.Run(tc.op, func(t *testing.T) {
			status, header := tc.call()
			requireTooMany(t, status, header, tc.limit)
		})
	}
}

// TestEveryBudgetedOperationAnswers429 reaches, for every operation that
// documents 429, a 429 that matches the spec.
func TestEveryBudgetedOperationAnswers429(t *testing.T) {
	t.Parallel()
	seen := newObserved()
	reachTooManyRequests(t, seen)
	for op, statuses := range contract(t).documented {
		if statuses[http.StatusTooManyRequests] {
			require.True(t, seen.seen[opStatus{op, http.StatusTooManyRequests}], "%s documents 429 but did not answer it", op)
		}
	}
	require.False(t, contract(t).documented["getHealth"][http.StatusTooManyRequests], "probes are never budgeted")
}

func TestTooManyRequestsAnswer(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"RATE_LIMIT_AUTH": "2/1m"}, nil)
	register := func() rawResponse {
		return s.do(t, "POST", "/register/", "application/json", jsonBody(`{"email":%q,"password":%q}`, uniqueEmail(), testPassword), "")
	}
	for i, wantRemaining := range []string{"1", "0"} {
		r := register()
		require.Equal(t, 201, r.Status, "request %d: %s", i+1, r.Body)
		require.Equal(t, "2", r.Header.Get("RateLimit-Limit"))
		require.Equal(t, wantRemaining, r.Header.Get("RateLimit-Remaining"))
		require.Equal(t, strconv.Itoa(30*(i+1)), r.Header.Get("RateLimit-Reset"), "one request refills in 30 s")
		require.Empty(t, r.Header.Get("Retry-After"))
	}
	r := register()
	requireTooMany(t, r.Status, r.Header, 2)
	require.Equal(t, "30", r.Header.Get("Retry-After"), "the next slot of a 2/1m budget is 30 s away")
	require.Equal(t, "60", r.Header.Get("RateLimit-Reset"))
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	require.Equal(t, "no-store", r.Header.Get("Cache-Control"))
	p := problemOf(t, r.Body)
	require.Equal(t, 429, p.Status)
	require.Equal(t, "Too Many Requests", p.Title)
	require.NotNil(t, p.Detail)
	require.Contains(t, *p.Detail, "retry after 30 s")
}

// TestInstancesShareBudgets: two API instances on one database and one Redis
// draw on the same budgets, whichever instance a request reaches.
func TestInstancesShareBudgets(t *testing.T) {
	t.Parallel()
	const budget = 6
	tests := []struct {
		name string
		env  string
		// request sends one request budgeted by env to s as u.
		request func(t *testing.T, s *contractServer, u testUser) rawResponse
	}{
		{"per address on /register/", "RATE_LIMIT_AUTH", func(t *testing.T, s *contractServer, _ testUser) rawResponse {
			return s.do(t, "POST", "/register/", "application/json", jsonBody(`{"email":%q,"password":%q}`, uniqueEmail(), testPassword), "")
		}},
		{"per user", "RATE_LIMIT_USER", func(t *testing.T, s *contractServer, u testUser) rawResponse {
			return s.do(t, "GET", "/orders/user/"+strconv.FormatInt(u.ID, 10)+"/", "", nil, u.Token)
		}},
		{"anonymous per address", "RATE_LIMIT_ANONYMOUS", func(t *testing.T, s *contractServer, _ testUser) rawResponse {
			return s.do(t, "GET", "/openapi.json", "", nil, "")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{tt.env: strconv.Itoa(budget) + "/1h"}
			first := startServer(t, env)
			env["DATABASE_URL"], env["REDIS_KEY_PREFIX"] = first.DBURL, first.RedisPrefix
			second := startServer(t, env)
			instances := []*contractServer{
				newContractServer(t, first.URL, first.DBURL, newObserved()),
				newContractServer(t, second.URL, second.DBURL, newObserved()),
			}
			var u testUser
			if tt.env == "RATE_LIMIT_USER" {
				u = newUser(t, instances[0])
			}
			for i := range budget {
				r := tt.request(t, instances[i%2], u)
				require.Less(t, r.Status, 300, "request %d of %d: %s", i+1, budget, r.Body)
				require.Equal(t, strconv.Itoa(budget-1-i), r.Header.Get("RateLimit-Remaining"), "request %d, instance %d", i+1, i%2)
			}
			for i, s := range instances {
				r := tt.request(t, s, u)
				require.Equal(t, http.StatusTooManyRequests, r.Status, "instance %d after the shared budget is spent", i)
			}
		})
	}
}

// TestLoginBudgetPerEmailAndAddress: password guessing against one account
// from one address meets the login budget (in any letter case of the email),
// while the account's owner, from another address, still logs in: a flood
// cannot lock a victim out.
func TestLoginBudgetPerEmailAndAddress(t *testing.T) {
	t.Parallel()
	const budget = 3
	s := startContractServer(t, map[string]string{"RATE_LIMIT_LOGIN_EMAIL": strconv.Itoa(budget) + "/1h", "TRUSTED_PROXIES": "127.0.0.1"}, nil)
	alice, bob := newUser(t, s), newUser(t, s) // logged in from 127.0.0.1
	token := func(from, username, password string) rawResponse {
		req, err := http.NewRequestWithContext(t.Context(), "POST", s.URL+"/token/",
			strings.NewReader("username="+username+"&password="+password))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		return s.send(t, req)
	}
	const attacker, owner = "203.0.113.66", "198.51.100.7"
	for i := range budget {
		r := token(attacker, alice.Email, "wrong-password")
		require.Equal(t, 401, r.Status, "guess %d", i+1)
	}
	for _, email := range []string{alice.Email, strings.ToUpper(alice.Email)} {
		r := token(attacker, email, alice.Password)
		requireTooMany(t, r.Status, r.Header, budget)
		require.Contains(t, *problemOf(t, r.Body).Detail, "this account from this address", "case does not open a new budget")
	}
	require.Equal(t, 200, token(owner, alice.Email, alice.Password).Status, "the owner from their own address")
	require.Equal(t, 200, token(attacker, bob.Email, bob.Password).Status, "another account from the attacker's address")
}

// TestForwardedForOnlyFromTrustedProxies: X-Forwarded-For picks the budget
// only when the connection comes from a configured proxy.
func TestForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		trusted   string
		forwarded []string
		want      []int
	}{
		{"no proxies configured: the header is ignored", "", []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, []int{200, 200, 429}},
		{"the peer is not a configured proxy", "10.0.0.0/8", []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, []int{200, 200, 429}},
		{"from a trusted proxy: one budget per client", "127.0.0.1/32", []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, []int{200, 200, 200}},
		{"from a trusted proxy, one client", "127.0.0.1/32", []string{"198.51.100.1", "198.51.100.1", "198.51.100.1"}, []int{200, 200, 429}},
		{"a forged hop in front of the proxy's does not help", "127.0.0.1/32", []string{"1.1.1.1, 198.51.100.1", "2.2.2.2, 198.51.100.1", "3.3.3.3, 198.51.100.1"}, []int{200, 200, 429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startContractServer(t, map[string]string{"RATE_LIMIT_ANONYMOUS": "2/1h", "TRUSTED_PROXIES": tt.trusted}, nil)
			for i, xff := range tt.forwarded {
				req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/openapi.json", nil)
				require.NoError(t, err)
				req.Header.Set("X-Forwarded-For", xff)
				require.Equal(t, tt.want[i], s.send(t, req).Status, "request %d (X-Forwarded-For: %s)", i+1, xff)
			}
		})
	}
}

// TestCredentialBudgetBitesBeforeValidation: a spent /token/ budget refuses
// even a request the validator would reject, so the refusal comes before any
// parsing, lookup or password hashing.
func TestCredentialBudgetBitesBeforeValidation(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"RATE_LIMIT_AUTH": "1/1h"}, nil)
	r := s.do(t, "POST", "/token/", "application/json", jsonBody(`{"username":"a@example.com","password":"x"}`), "")
	require.Equal(t, 422, r.Status, "the first request is within budget: the validator answers")
	r = s.do(t, "POST", "/token/", "application/json", jsonBody(`{"username":"a@example.com","password":"x"}`), "")
	requireTooMany(t, r.Status, r.Header, 1)
	r = s.do(t, "POST", "/token/", "application/x-www-form-urlencoded", oversized("username=a&password="), "")
	require.Equal(t, 413, r.Status, "an oversized body is still 413, whatever the budget")
}

func TestProbesAreNotBudgeted(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"RATE_LIMIT_ANONYMOUS": "1/1h"}, nil)
	for range 5 {
		for _, path := range []string{"/health", "/ready"} {
			r := s.do(t, "GET", path, "", nil, "")
			require.Equal(t, 200, r.Status, "%s: %s", path, r.Body)
			require.Empty(t, r.Header.Get("RateLimit-Limit"))
		}
	}
}

func TestRateLimitingCanBeSwitchedOff(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"RATE_LIMIT_ENABLED": "false", "RATE_LIMIT_AUTH": "1/1h", "RATE_LIMIT_ANONYMOUS": "1/1h"}, nil)
	for range 3 {
		r := s.do(t, "POST", "/register/", "application/json", jsonBody(`{"email":%q,"password":%q}`, uniqueEmail(), testPassword), "")
		require.Equal(t, 201, r.Status, "%s", r.Body)
		require.Empty(t, r.Header.Get("RateLimit-Limit"))
	}
	ready, err := s.Client.GetReadyWithResponse(t.Context())
	require.NoError(t, err)
	require.Equal(t, 200, ready.StatusCode())
	require.Equal(t, "disabled", (*ready.JSON200.Optional)["rate_limits"])
}
