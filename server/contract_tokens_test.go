package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

// claims of a test token; zero fields are left out of the token.
type claims struct {
	sub string
	iss string
	aud []string
	exp time.Time
}

// validClaims are what the server itself issues for userID.
func validClaims(userID int64) claims {
	return claims{sub: strconv.FormatInt(userID, 10), iss: "orders-api", aud: []string{"orders-api"}, exp: time.Now().Add(time.Hour)}
}

// signedToken signs c with HS256 and secret, as an attacker holding (or
// guessing) a secret would.
func signedToken(t *testing.T, secret string, alg jwa.SignatureAlgorithm, c claims) string {
	t.Helper()
	b := jwt.NewBuilder().IssuedAt(time.Now()).JwtID(uuid.NewString())
	if c.sub != "" {
		b = b.Subject(c.sub)
	}
	if c.iss != "" {
		b = b.Issuer(c.iss)
	}
	if c.aud != nil {
		b = b.Audience(c.aud)
	}
	if !c.exp.IsZero() {
		b = b.Expiration(c.exp)
	}
	tok, err := b.Build()
	require.NoError(t, err)
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, []byte(secret)))
	require.NoError(t, err)
	return string(signed)
}

// unsignedToken is an "alg": "none" token: header and claims, no signature.
func unsignedToken(t *testing.T, c claims) string {
	t.Helper()
	return segment(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." +
		segment(t, map[string]any{"sub": c.sub, "iss": c.iss, "aud": c.aud, "exp": c.exp.Unix()}) + "."
}

// signedPayload signs any claims, as JSON, with the server's secret: a
// token that passes the signature check and must be judged by its claims.
func signedPayload(t *testing.T, payload map[string]any) string {
	t.Helper()
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	signed, err := jws.Sign(b, jws.WithKey(jwa.HS256(), []byte(testJWTSecret)))
	require.NoError(t, err)
	return string(signed)
}

// validPayload is validClaims(userID) as a map, with overrides applied (a
// nil value removes the claim).
func validPayload(userID int64, overrides map[string]any) map[string]any {
	now := time.Now()
	p := map[string]any{
		"sub": strconv.FormatInt(userID, 10), "iss": "orders-api", "aud": "orders-api",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": uuid.NewString(),
	}
	for name, v := range overrides {
		if v == nil {
			delete(p, name)
			continue
		}
		p[name] = v
	}
	return p
}

// forgedToken keeps the signature of a real token but swaps its claims for
// another user's.
func forgedToken(t *testing.T, genuine string, otherUserID int64) string {
	t.Helper()
	parts := strings.Split(genuine, ".")
	require.Len(t, parts, 3)
	c := validClaims(otherUserID)
	parts[1] = segment(t, map[string]any{"sub": c.sub, "iss": c.iss, "aud": c.aud, "exp": c.exp.Unix()})
	return strings.Join(parts, ".")
}

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

// badTokens are bearer tokens the server must answer with 401, keyed by a
// readable name. victim is the user whose identity they try to take.
func badTokens(t *testing.T, victim testUser) map[string]string {
	t.Helper()
	expired := validClaims(victim.ID)
	expired.exp = time.Now().Add(-time.Hour)
	noExp := validClaims(victim.ID)
	noExp.exp = time.Time{}
	wrongIssuer := validClaims(victim.ID)
	wrongIssuer.iss = "someone-else"
	subZero, subText := validClaims(0), validClaims(victim.ID)
	subZero.sub, subText.sub = "0", "alice"
	id := strconv.FormatInt(victim.ID, 10)
	future := strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)
	now := strconv.FormatInt(time.Now().Unix(), 10)
	claimed := func(overrides map[string]any) string {
		return signedPayload(t, validPayload(victim.ID, overrides))
	}
	return map[string]string{
		"subject with a plus sign":    claimed(map[string]any{"sub": "+" + id}),
		"subject with a leading zero": claimed(map[string]any{"sub": "0" + id}),
		"subject with a space":        claimed(map[string]any{"sub": " " + id}),
		"subject a number":            claimed(map[string]any{"sub": victim.ID}),
		"no token id":                 claimed(map[string]any{"jti": nil}),
		"token id not a UUID":         claimed(map[string]any{"jti": "token-1"}),
		"token id a number":           claimed(map[string]any{"jti": 7}),
		"no audience":                 claimed(map[string]any{"aud": nil}),
		"wrong audience":              claimed(map[string]any{"aud": "another-api"}),
		"audience list without ours":  claimed(map[string]any{"aud": []string{"another-api", "third-api"}}),
		"expiry a string":             claimed(map[string]any{"exp": future}),
		"expiry RFC 3339 text":        claimed(map[string]any{"exp": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}),
		"not-before a string":         claimed(map[string]any{"nbf": now}),
		"issued-at a string":          claimed(map[string]any{"iat": now}),
		"expired beyond the skew":     claimed(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}),
		"garbage":                     "not-a-jwt",
		"three garbage parts":         "a.b.c",
		"empty claims":                segment(t, map[string]string{"alg": "HS256"}) + ".." + "sig",
		"expired":                     signedToken(t, testJWTSecret, jwa.HS256(), expired),
		"no expiry":                   signedToken(t, testJWTSecret, jwa.HS256(), noExp),
		"wrong issuer":                signedToken(t, testJWTSecret, jwa.HS256(), wrongIssuer),
		"other secret":                signedToken(t, "another-secret-0123456789abcdef-0123456789", jwa.HS256(), validClaims(victim.ID)),
		"HS512 same secret":           signedToken(t, testJWTSecret, jwa.HS512(), validClaims(victim.ID)),
		"alg none":                    unsignedToken(t, validClaims(victim.ID)),
		"forged claims":               forgedToken(t, victim.Token, victim.ID+1),
		"subject zero":                signedToken(t, testJWTSecret, jwa.HS256(), subZero),
		"subject not a number":        signedToken(t, testJWTSecret, jwa.HS256(), subText),
		"truncated signature":         victim.Token[:len(victim.Token)-4],
	}
}

// A well-signed token for a user that no longer exists (the database was
// reset while the token lived) is a 401, not a foreign-key 500.
func TestTokenOfVanishedUserIsUnauthorized(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	token := signedToken(t, testJWTSecret, jwa.HS256(), validClaims(987654321))

	resp, err := s.Client.CreateOrderWithResponse(context.Background(), nil,
		client.CreateOrderJSONRequestBody{Items: []client.OrderItem{item(1, 1, "1.00")}}, bearer(token))
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode(), string(resp.Body))
}

// Tokens carry JWT_AUDIENCE as their aud, and a server refuses tokens for
// another audience even when its own secret signed them. The control: a
// token signed in the tests' own way, with this server's audience, works.
func TestTokensCarryTheConfiguredAudience(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"JWT_AUDIENCE": "shop-frontend"}, nil)
	u := newUser(t, s)

	parts := strings.Split(u.Token, ".")
	require.Len(t, parts, 3)
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var issued map[string]any
	require.NoError(t, json.Unmarshal(payload, &issued))
	require.Equal(t, []any{"shop-frontend"}, issued["aud"])

	for name, tc := range map[string]struct {
		token string
		want  int
	}{
		"issued by the server":            {u.Token, 200},
		"signed here for shop-frontend":   {signedPayload(t, validPayload(u.ID, map[string]any{"aud": "shop-frontend"})), 200},
		"signed here for orders-api":      {signedPayload(t, validPayload(u.ID, nil)), 401},
		"signed here without an audience": {signedPayload(t, validPayload(u.ID, map[string]any{"aud": nil})), 401},
	} {
		r, err := s.Client.ListUserOrdersWithResponse(context.Background(), u.ID, nil, bearer(tc.token))
		require.NoError(t, err)
		require.Equal(t, tc.want, r.StatusCode(), "%s: %s", name, r.Body)
	}
}
