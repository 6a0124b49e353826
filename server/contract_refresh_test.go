package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// refreshWith runs the refresh grant through the typed client.
func refreshWith(t *testing.T, s *contractServer, refreshToken string) *client.CreateTokenResponse {
	t.Helper()
	r, err := s.Client.CreateTokenWithFormdataBodyWithResponse(t.Context(), client.TokenRequest{
		GrantType: client.TokenRequestGrantTypeRefreshToken, RefreshToken: refreshToken,
	})
	require.NoError(t, err)
	return r
}

// requireInvalidGrant: 400, a problem that also carries RFC 6749's error
// member, so that an OAuth client reading only {"error": ...} understands it.
func requireInvalidGrant(t *testing.T, r *client.CreateTokenResponse) {
	t.Helper()
	require.Equal(t, http.StatusBadRequest, r.StatusCode(), "%s", r.Body)
	require.Equal(t, "application/problem+json", r.HTTPResponse.Header.Get("Content-Type"))
	p := r.ApplicationproblemJSON400
	require.NotNil(t, p)
	require.Equal(t, 400, p.Status)
	require.NotNil(t, p.Error)
	require.Equal(t, "invalid_grant", *p.Error)
	var oauth struct {
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &oauth))
	require.Equal(t, "invalid_grant", oauth.Error)
}

// revokeWith revokes token through the typed client and requires 200.
func revokeWith(t *testing.T, s *contractServer, token, hint string) {
	t.Helper()
	body := client.RevokeRequest{Token: token}
	if hint != "" {
		body.TokenTypeHint = &hint
	}
	r, err := s.Client.RevokeTokenWithFormdataBodyWithResponse(t.Context(), body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode(), "%s", r.Body)
}

// accessStatus is the status of an authenticated request made with token.
func accessStatus(t *testing.T, s *contractServer, userID int64, token string) int {
	t.Helper()
	r, err := s.Client.ListUserOrdersWithResponse(t.Context(), userID, nil, bearer(token))
	require.NoError(t, err)
	return r.StatusCode()
}

// As a new user would try it: log in, refresh, present the old refresh
// token again: refused, and the new one dies with it.
func TestRefreshRotatesAndReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"JWT_TTL": "5m"}, nil)
	u := newUser(t, s)
	require.NotEmpty(t, u.Refresh, "the password grant hands out a refresh token")

	r := refreshWith(t, s, u.Refresh)
	require.Equal(t, http.StatusOK, r.StatusCode(), "%s", r.Body)
	require.Equal(t, "no-store", r.HTTPResponse.Header.Get("Cache-Control"))
	next := *r.JSON200
	require.Equal(t, client.TokenTokenTypeBearer, next.TokenType)
	require.Equal(t, 300, next.ExpiresIn)
	require.NotEqual(t, u.Refresh, next.RefreshToken)
	require.NotEqual(t, u.Token, next.AccessToken)
	require.Equal(t, http.StatusOK, accessStatus(t, s, u.ID, next.AccessToken))

	requireInvalidGrant(t, refreshWith(t, s, u.Refresh))         // replayed
	requireInvalidGrant(t, refreshWith(t, s, next.RefreshToken)) // the family died with it
	require.Equal(t, http.StatusUnauthorized, accessStatus(t, s, u.ID, next.AccessToken))
	require.Equal(t, http.StatusUnauthorized, accessStatus(t, s, u.ID, u.Token))

	// A fresh login is a new family.
	again := loginGrant(t, s, u.Email, u.Password)
	require.Equal(t, http.StatusOK, accessStatus(t, s, u.ID, again.AccessToken))
	require.Equal(t, http.StatusOK, refreshWith(t, s, again.RefreshToken).StatusCode())
}

func TestRefreshGrantInputs(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	form := func(body string) rawResponse {
		return s.do(t, "POST", "/token/", ctForm, strings.NewReader(body), "")
	}
	tests := []struct {
		name  string
		body  string
		want  int
		field string
	}{
		{"refresh_token missing", "grant_type=refresh_token", 422, "body.refresh_token"},
		{"refresh_token empty", "grant_type=refresh_token&refresh_token=", 422, "body.refresh_token"},
		{"refresh_token 4097 characters", "grant_type=refresh_token&refresh_token=" + strings.Repeat("a", 4097), 422, "body.refresh_token"},
		{"refresh_token repeated", "grant_type=refresh_token&refresh_token=a&refresh_token=b", 422, "body.refresh_token"},
		{"unknown grant type", "grant_type=client_credentials&refresh_token=" + u.Refresh, 422, "body.grant_type"},
		{"password grant without a password", "grant_type=password&username=" + url.QueryEscape(u.Email), 422, "body.password"},
		{"no grant type and nothing else", "scope=x", 422, "body.username"},
		{"malformed refresh token", "grant_type=refresh_token&refresh_token=not-a-refresh-token", 400, ""},
		{"an access token as refresh token", "grant_type=refresh_token&refresh_token=" + u.Token, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := form(tt.body)
			require.Equal(t, tt.want, r.Status, "%s", r.Body)
			p := problemOf(t, r.Body)
			if tt.field != "" {
				require.Contains(t, fieldsOf(&p), tt.field)
				return
			}
			require.NotNil(t, p.Error)
			require.Equal(t, "invalid_grant", *p.Error)
		})
	}
	// None of the refusals touched the refresh token: it still works once.
	require.Equal(t, http.StatusOK, refreshWith(t, s, u.Refresh).StatusCode())
}

func TestRevokeThroughTheClient(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)

	t.Run("an access token", func(t *testing.T) {
		other := loginGrant(t, s, u.Email, u.Password)
		revokeWith(t, s, other.AccessToken, "access_token")
		r := s.do(t, "GET", "/orders/user/"+strconv.FormatInt(u.ID, 10)+"/", "", nil, other.AccessToken)
		require.Equal(t, http.StatusUnauthorized, r.Status)
		require.Equal(t, "Bearer", r.Header.Get("WWW-Authenticate"))
		require.Equal(t, http.StatusOK, accessStatus(t, s, u.ID, u.Token), "another token of the same user is untouched")
		require.Equal(t, http.StatusOK, refreshWith(t, s, other.RefreshToken).StatusCode(), "revoking an access token leaves its refresh token")
	})
	t.Run("a refresh token, with a wrong hint", func(t *testing.T) {
		other := loginGrant(t, s, u.Email, u.Password)
		revokeWith(t, s, other.RefreshToken, "access_token")
		requireInvalidGrant(t, refreshWith(t, s, other.RefreshToken))
		require.Equal(t, http.StatusUnauthorized, accessStatus(t, s, u.ID, other.AccessToken), "the access tokens of the family go with it")
	})
	t.Run("what is not a live token", func(t *testing.T) {
		revoked := loginGrant(t, s, u.Email, u.Password)
		revokeWith(t, s, revoked.RefreshToken, "")
		for name, token := range map[string]string{
			"unknown refresh token": strings.Repeat("A", 43),
			"garbage":               "not a token",
			"forged access token":   forgedToken(t, u.Token, u.ID+1),
			"already revoked":       revoked.RefreshToken,
		} {
			r, err := s.Client.RevokeTokenWithFormdataBodyWithResponse(t.Context(), client.RevokeRequest{Token: token})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.StatusCode(), "%s: %s", name, r.Body)
		}
		require.Equal(t, http.StatusOK, accessStatus(t, s, u.ID, u.Token), "the forged token revoked nothing")
	})
	t.Run("malformed requests", func(t *testing.T) {
		for name, tc := range map[string]struct{ ctype, body string }{
			"no token":     {ctForm, "token_type_hint=refresh_token"},
			"empty token":  {ctForm, "token="},
			"token twice":  {ctForm, "token=a&token=b"},
			"a JSON body":  {ctJSON, `{"token":"x"}`},
			"a long token": {ctForm, "token=" + strings.Repeat("a", 4097)},
		} {
			r := s.do(t, "POST", "/revoke/", tc.ctype, strings.NewReader(tc.body), "")
			require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s: %s", name, r.Body)
		}
	})
}

// Revoking a token on one instance is refused by another within a second,
// although the other had already verified (and cached) it. Redis is
// unreachable for both: revocation does not depend on it.
func TestRevocationReachesEveryInstance(t *testing.T) {
	t.Parallel()
	env := map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0", "REDIS_KEY_PREFIX": "unreachable"}
	first := startServer(t, env)
	env["DATABASE_URL"] = first.DBURL
	second := startServer(t, env)
	a := newContractServer(t, first.URL, first.DBURL, newObserved())
	b := newContractServer(t, second.URL, second.DBURL, newObserved())
	u := newUser(t, a)
	other := loginGrant(t, a, u.Email, u.Password)
	require.Equal(t, http.StatusOK, accessStatus(t, b, u.ID, u.Token))
	require.Equal(t, http.StatusOK, accessStatus(t, b, u.ID, other.AccessToken))

	refusedWithin := func(s *contractServer, token string, start time.Time) time.Duration {
		t.Helper()
		require.Eventually(t, func() bool { return accessStatus(t, s, u.ID, token) == http.StatusUnauthorized },
			time.Second, 5*time.Millisecond, "the other instance still accepts the revoked token after a second")
		return time.Since(start)
	}

	start := time.Now()
	revokeWith(t, a, u.Token, "")
	require.Equal(t, http.StatusUnauthorized, accessStatus(t, a, u.ID, u.Token), "the revoking instance at once")
	t.Logf("access token revoked on one instance, refused by the other %s after the revocation was sent", refusedWithin(b, u.Token, start))

	start = time.Now()
	revokeWith(t, b, other.RefreshToken, "refresh_token")
	requireInvalidGrant(t, refreshWith(t, a, other.RefreshToken))
	t.Logf("refresh token revoked on one instance, its access token refused by the other %s after", refusedWithin(a, other.AccessToken, start))
}

// reachRevocationsUnknown: an instance that could not load the revoked
// tokens (its database is not migrated) answers every secured operation
// with a valid token 503, rather than risk accepting a revoked one.
func reachRevocationsUnknown(t *testing.T, s *contractServer) {
	t.Helper()
	token := bearer(signedToken(t, testJWTSecret, jwa.HS256(), validClaims(1)))
	order := uuid.New()
	statuses := map[string]func() (int, http.Header){
		"createOrder": func() (int, http.Header) {
			r, err := s.Client.CreateOrderWithResponse(t.Context(), nil, client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}, token)
			return statusOf(t, r, err), r.HTTPResponse.Header
		},
		"getOrder": func() (int, http.Header) {
			r, err := s.Client.GetOrderWithResponse(t.Context(), order, nil, token)
			return statusOf(t, r, err), r.HTTPResponse.Header
		},
		"updateOrderStatus": func() (int, http.Header) {
			r, err := s.Client.UpdateOrderStatusWithResponse(t.Context(), order, nil, client.UpdateOrderStatusRequest{Status: client.OrderStatusPAID}, token)
			return statusOf(t, r, err), r.HTTPResponse.Header
		},
		"listUserOrders": func() (int, http.Header) {
			r, err := s.Client.ListUserOrdersWithResponse(t.Context(), 1, nil, token)
			return statusOf(t, r, err), r.HTTPResponse.Header
		},
	}
	for op, call := range statuses {
		status, header := call()
		require.Equal(t, http.StatusServiceUnavailable, status, op)
		require.Equal(t, "1", header.Get("Retry-After"), op)
	}
}

// An instance that started without its revocations (the database was not
// migrated yet) refuses tokens with 503 until its revocation feed has
// loaded them, then accepts them; the loss and the return are logged once.
func TestTokensAcceptedOnceRevocationsAreLoaded(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewEmpty(t)
	ts := startUnreadyServer(t, map[string]string{"DATABASE_URL": dbURL, "MIGRATE_ON_START": "false"})
	s := newContractServer(t, ts.URL, dbURL, newObserved())
	token := signedToken(t, testJWTSecret, jwa.HS256(), validClaims(1))
	require.Equal(t, http.StatusServiceUnavailable, accessStatus(t, s, 1, token))

	require.NoError(t, database.Migrate(t.Context(), dbURL, slog.New(slog.DiscardHandler)))
	require.Eventually(t, func() bool { return accessStatus(t, s, 1, token) == http.StatusOK }, 15*time.Second, 50*time.Millisecond)
	require.Len(t, ts.logs.Find("revoked tokens not loaded; tokens are refused (503) until they are"), 1)
	require.Len(t, ts.logs.Find("revocation feed restored"), 1)
	require.Empty(t, ts.logs.Find("revocation feed lost; tokens revoked elsewhere are seen once it is back"), "already reported as not loaded")
}

// Neither kind of token reaches the log, not even when a reuse is detected
// (which is logged, naming the family and the user).
func TestTokensNeverReachTheLog(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	u := newUser(t, s)
	next := refreshWith(t, s, u.Refresh)
	require.Equal(t, http.StatusOK, next.StatusCode())
	requireInvalidGrant(t, refreshWith(t, s, u.Refresh))
	revokeWith(t, s, next.JSON200.AccessToken, "")
	revokeWith(t, s, next.JSON200.RefreshToken, "")

	reuse := ts.logs.Find("refresh token reused: its family is revoked")
	require.Len(t, reuse, 1)
	require.InDelta(t, u.ID, reuse[0]["user_id"], 0)
	logs := ts.logs.String()
	for _, secret := range []string{u.Refresh, u.Token, next.JSON200.RefreshToken, next.JSON200.AccessToken, u.Password} {
		require.NotContains(t, logs, secret)
		require.NotContains(t, logs, secret[:20])
	}
}
