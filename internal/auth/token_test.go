package auth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	testEpoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

// tokensAt returns a Tokens whose clock is stopped at now.
func tokensAt(key []byte, issuer string, now time.Time) *Tokens {
	t := NewTokens(key, issuer, 30*time.Minute)
	t.now = func() time.Time { return now }
	return t
}

// claims decodes a token's payload without verifying it.
func claims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	return c
}

// signed builds and signs a token with arbitrary claims.
func signed(t *testing.T, alg jwa.SignatureAlgorithm, key []byte, build func(*jwt.Builder) *jwt.Builder) string {
	t.Helper()
	tok, err := build(jwt.NewBuilder()).Build()
	require.NoError(t, err)
	b, err := jwt.Sign(tok, jwt.WithKey(alg, key))
	require.NoError(t, err)
	return string(b)
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

func TestTokensRoundTrip(t *testing.T) {
	t.Parallel()
	tokens := tokensAt(testKey, "orders-api", testEpoch)
	assert.Equal(t, 30*time.Minute, tokens.TTL())

	raw, err := tokens.Issue(42)
	require.NoError(t, err)
	id, err := tokens.Verify(raw)
	require.NoError(t, err)
	assert.Equal(t, int64(42), id)

	c := claims(t, raw)
	assert.Equal(t, "42", c["sub"])
	assert.Equal(t, "orders-api", c["iss"])
	assert.InDelta(t, testEpoch.Unix(), c["iat"], 0)
	assert.InDelta(t, testEpoch.Add(30*time.Minute).Unix(), c["exp"], 0)
	assert.NotEmpty(t, c["jti"])

	other, err := tokens.Issue(42)
	require.NoError(t, err)
	assert.NotEqual(t, c["jti"], claims(t, other)["jti"], "every token has its own id")

	header := strings.Split(raw, ".")[0]
	b, err := base64.RawURLEncoding.DecodeString(header)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"HS256"`)
}

func TestTokensExpiry(t *testing.T) {
	t.Parallel()
	raw, err := tokensAt(testKey, "orders-api", testEpoch).Issue(7)
	require.NoError(t, err)

	tests := []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"just issued", testEpoch, true},
		{"one second before expiry", testEpoch.Add(30*time.Minute - time.Second), true},
		{"within the clock skew after expiry", testEpoch.Add(30*time.Minute + 2*time.Second), true},
		{"past the clock skew", testEpoch.Add(30*time.Minute + 6*time.Second), false},
		{"a day later", testEpoch.Add(24 * time.Hour), false},
		{"issued in the future", testEpoch.Add(-time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := tokensAt(testKey, "orders-api", tt.at).Verify(raw)
			if tt.ok {
				require.NoError(t, err)
				assert.Equal(t, int64(7), id)
				return
			}
			require.ErrorIs(t, err, apperr.ErrUnauthenticated)
			assert.Zero(t, id)
		})
	}
}

func TestTokensRejected(t *testing.T) {
	t.Parallel()
	verifier := tokensAt(testKey, "orders-api", testEpoch)
	good, err := verifier.Issue(42)
	require.NoError(t, err)
	parts := strings.Split(good, ".")
	exp := testEpoch.Add(time.Hour)
	validClaims := func(b *jwt.Builder) *jwt.Builder {
		return b.Subject("42").Issuer("orders-api").IssuedAt(testEpoch).Expiration(exp)
	}

	fromOtherKey, err := tokensAt([]byte("another-key-another-key-another-"), "orders-api", testEpoch).Issue(42)
	require.NoError(t, err)
	fromOtherIssuer, err := tokensAt(testKey, "someone-else", testEpoch).Issue(42)
	require.NoError(t, err)

	payload := claims(t, good)
	payload["sub"] = "1" // become another user, keep the signature
	tamperedPayload := parts[0] + "." + b64json(t, payload) + "." + parts[2]

	algNone := b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." +
		b64json(t, map[string]any{"sub": "42", "iss": "orders-api", "iat": testEpoch.Unix(), "exp": exp.Unix()}) + "."

	// Change the signature's first character: the last one also carries
	// padding bits that decoders ignore, so changing it may change nothing.
	flipped := "A"
	if parts[2][0] == 'A' {
		flipped = "B"
	}

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not-a-token"},
		{"three garbage parts", "a.b.c"},
		{"wrong key", fromOtherKey},
		{"wrong issuer", fromOtherIssuer},
		{"alg none", algNone},
		{"alg none with the original signature", strings.TrimSuffix(algNone, ".") + "." + parts[2]},
		{"tampered payload", tamperedPayload},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipped + parts[2][1:]},
		{"signature removed", parts[0] + "." + parts[1] + "."},
		{"HS512 with the right key", signed(t, jwa.HS512(), testKey, validClaims)},
		{"non-numeric subject", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return validClaims(b).Subject("alice")
		})},
		{"zero subject", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return validClaims(b).Subject("0")
		})},
		{"negative subject", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return validClaims(b).Subject("-5")
		})},
		{"subject beyond int64", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return validClaims(b).Subject("99999999999999999999")
		})},
		{"no subject", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return b.Issuer("orders-api").IssuedAt(testEpoch).Expiration(exp)
		})},
		{"no expiry", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return b.Subject("42").Issuer("orders-api").IssuedAt(testEpoch)
		})},
		{"no issuer", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return b.Subject("42").IssuedAt(testEpoch).Expiration(exp)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := verifier.Verify(tt.token)
			require.ErrorIs(t, err, apperr.ErrUnauthenticated)
			assert.Zero(t, id)
		})
	}

	// The control: the untouched token still verifies.
	id, err := verifier.Verify(good)
	require.NoError(t, err)
	assert.Equal(t, int64(42), id)
}

// A token verified once is remembered, but only until it expires.
func TestVerifiedTokensAreForgottenAtExpiry(t *testing.T) {
	t.Parallel()
	tokens := tokensAt(testKey, "orders-api", testEpoch)
	raw, err := tokens.Issue(9)
	require.NoError(t, err)
	id, err := tokens.Verify(raw)
	require.NoError(t, err)
	require.Equal(t, int64(9), id)
	require.Len(t, tokens.verified, 1, "remembered")

	forged := raw[:len(raw)-2] + "xx"
	_, err = tokens.Verify(forged)
	require.ErrorIs(t, err, apperr.ErrUnauthenticated, "only the identical token is remembered")

	tokens.now = func() time.Time { return testEpoch.Add(time.Hour) }
	_, err = tokens.Verify(raw)
	require.ErrorIs(t, err, apperr.ErrUnauthenticated, "an expired token is refused even though it was remembered")
}
