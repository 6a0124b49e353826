package auth

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

var (
	testKey   = []byte("0123456789abcdef0123456789abcdef")
	testEpoch = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
)

// testAudience differs from the issuer, so that a mix-up of the two fails.
const testAudience = "orders-test-audience"

func testSettings(ttl time.Duration) TokenSettings {
	return TokenSettings{Keys: secretKeys(testKey), Issuer: "orders-api", Audience: testAudience, TTL: ttl}
}

// secretKeys are the keys of a Tokens that signs with the HS256 secret and
// verifies with it and previous.
func secretKeys(secret []byte, previous ...[]byte) *Keys {
	var old []Key
	for _, p := range previous {
		old = append(old, SecretKey(p))
	}
	keys, err := NewKeys(SecretKey(secret), old...)
	if err != nil {
		panic(err)
	}
	return keys
}

// issue is Issue for a test: the token, or the test fails.
func issue(t *testing.T, tokens *Tokens, userID int64) string {
	t.Helper()
	issued, err := tokens.Issue(userID)
	require.NoError(t, err)
	return issued.Token
}

// tokensAt returns a Tokens whose clock is stopped at now.
func tokensAt(key []byte, issuer string, now time.Time) *Tokens {
	settings := testSettings(30 * time.Minute)
	settings.Keys, settings.Issuer = secretKeys(key), issuer
	t := NewTokens(settings)
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
	require.Equal(t, 30*time.Minute, tokens.TTL())

	raw := issue(t, tokens, 42)
	id, err := tokens.Verify(raw)
	require.NoError(t, err)
	require.Equal(t, int64(42), id)

	c := claims(t, raw)
	require.Equal(t, "42", c["sub"])
	require.Equal(t, "orders-api", c["iss"])
	require.Equal(t, []any{testAudience}, c["aud"])
	require.InDelta(t, testEpoch.Unix(), c["iat"], 0)
	require.InDelta(t, testEpoch.Add(30*time.Minute).Unix(), c["exp"], 0)
	require.NotEmpty(t, c["jti"])

	other := issue(t, tokens, 42)
	require.NotEqual(t, c["jti"], claims(t, other)["jti"], "every token has its own id")

	header := strings.Split(raw, ".")[0]
	b, err := base64.RawURLEncoding.DecodeString(header)
	require.NoError(t, err)
	require.Contains(t, string(b), `"HS256"`)
}

func TestTokensExpiry(t *testing.T) {
	t.Parallel()
	raw := issue(t, tokensAt(testKey, "orders-api", testEpoch), 7)

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
				require.Equal(t, int64(7), id)
				return
			}
			require.ErrorIs(t, err, apperr.ErrUnauthenticated)
			require.Zero(t, id)
		})
	}
}

func TestTokensRejected(t *testing.T) {
	t.Parallel()
	verifier := tokensAt(testKey, "orders-api", testEpoch)
	good := issue(t, verifier, 42)
	parts := strings.Split(good, ".")
	exp := testEpoch.Add(time.Hour)
	validClaims := func(b *jwt.Builder) *jwt.Builder {
		return b.Subject("42").Issuer("orders-api").Audience([]string{testAudience}).IssuedAt(testEpoch).Expiration(exp)
	}

	fromOtherKey := issue(t, tokensAt([]byte("another-key-another-key-another-"), "orders-api", testEpoch), 42)
	fromOtherIssuer := issue(t, tokensAt(testKey, "someone-else", testEpoch), 42)

	payload := claims(t, good)
	payload["sub"] = "1" // become another user, keep the signature
	tamperedPayload := parts[0] + "." + b64json(t, payload) + "." + parts[2]

	algNone := b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." +
		b64json(t, map[string]any{"sub": "42", "iss": "orders-api", "aud": testAudience, "iat": testEpoch.Unix(), "exp": exp.Unix()}) + "."

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
			return b.Issuer("orders-api").Audience([]string{testAudience}).IssuedAt(testEpoch).Expiration(exp)
		})},
		{"no expiry", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return b.Subject("42").Issuer("orders-api").Audience([]string{testAudience}).IssuedAt(testEpoch)
		})},
		{"no issuer", signed(t, jwa.HS256(), testKey, func(b *jwt.Builder) *jwt.Builder {
			return b.Subject("42").Audience([]string{testAudience}).IssuedAt(testEpoch).Expiration(exp)
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := verifier.Verify(tt.token)
			require.ErrorIs(t, err, apperr.ErrUnauthenticated)
			require.Zero(t, id)
		})
	}

	// The control: the untouched token still verifies.
	id, err := verifier.Verify(good)
	require.NoError(t, err)
	require.Equal(t, int64(42), id)
}

// A token verified once is remembered, but only until it expires.
func TestVerifiedTokensAreForgottenAtExpiry(t *testing.T) {
	t.Parallel()
	tokens := tokensAt(testKey, "orders-api", testEpoch)
	raw := issue(t, tokens, 9)
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

// signedPayload signs payload, any JSON text, with HS256 and the right key:
// a token that passes the signature check and must be judged by its claims.
func signedPayload(t testing.TB, payload string) string {
	t.Helper()
	b, err := jws.Sign([]byte(payload), jws.WithKey(jwa.HS256(), testKey))
	require.NoError(t, err)
	return string(b)
}

// payloadWith is a payload of valid claims at testEpoch with claim replaced
// by the JSON value raw, or removed when raw is "".
func payloadWith(claim, raw string) string {
	claims := map[string]string{
		"sub": `"42"`,
		"iss": `"orders-api"`,
		"aud": strconv.Quote(testAudience),
		"iat": strconv.FormatInt(testEpoch.Unix(), 10),
		"exp": strconv.FormatInt(testEpoch.Add(time.Hour).Unix(), 10),
		"jti": `"5f0c2a8e-8d1b-4c47-9b3e-2f6a1d9c7e40"`,
	}
	if raw == "" {
		delete(claims, claim)
	} else {
		claims[claim] = raw
	}
	parts := make([]string, 0, len(claims))
	for name, value := range claims {
		parts = append(parts, strconv.Quote(name)+":"+value)
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// Correctly signed tokens whose claims are not what Issue writes.
func TestTokensWithBadClaimsAreRejected(t *testing.T) {
	t.Parallel()
	verifier := tokensAt(testKey, "orders-api", testEpoch)
	future := strconv.FormatInt(testEpoch.Add(time.Hour).Unix(), 10)
	expiredBeyondSkew := strconv.FormatInt(testEpoch.Add(-clockSkew-time.Second).Unix(), 10)

	tests := []struct {
		name    string
		payload string
	}{
		{"sub with a plus sign", payloadWith("sub", `"+42"`)},
		{"sub with a leading zero", payloadWith("sub", `"042"`)},
		{"sub with a leading space", payloadWith("sub", `" 42"`)},
		{"sub with a trailing space", payloadWith("sub", `"42 "`)},
		{"sub negative", payloadWith("sub", `"-1"`)},
		{"sub zero", payloadWith("sub", `"0"`)},
		{"sub minus zero", payloadWith("sub", `"-0"`)},
		{"sub with a fraction", payloadWith("sub", `"42.0"`)},
		{"sub with an exponent", payloadWith("sub", `"4.2e1"`)},
		{"sub with an underscore", payloadWith("sub", `"4_2"`)},
		{"sub in hex", payloadWith("sub", `"0x2a"`)},
		{"sub in full-width digits", payloadWith("sub", `"４２"`)},
		{"sub empty", payloadWith("sub", `""`)},
		{"sub a number", payloadWith("sub", `42`)},
		{"sub missing", payloadWith("sub", "")},
		{"aud missing", payloadWith("aud", "")},
		{"aud another service", payloadWith("aud", `"another-service"`)},
		{"aud the issuer", payloadWith("aud", `"orders-api"`)},
		{"aud in another case", payloadWith("aud", strconv.Quote(strings.ToUpper(testAudience)))},
		{"aud array without ours", payloadWith("aud", `["another-service","third"]`)},
		{"aud empty array", payloadWith("aud", `[]`)},
		{"aud a number", payloadWith("aud", `1`)},
		{"exp a string of digits", payloadWith("exp", `"9999999999"`)},
		{"exp a string of our own value", payloadWith("exp", strconv.Quote(future))},
		{"exp RFC 3339 text", payloadWith("exp", `"2099-01-01T00:00:00Z"`)},
		{"exp null", payloadWith("exp", `null`)},
		{"exp true", payloadWith("exp", `true`)},
		{"exp an array", payloadWith("exp", `[`+future+`]`)},
		{"exp expired beyond the skew", payloadWith("exp", expiredBeyondSkew)},
		{"exp missing", payloadWith("exp", "")},
		{"nbf a string", payloadWith("nbf", `"0"`)},
		{"nbf beyond the skew", payloadWith("nbf", strconv.FormatInt(testEpoch.Add(clockSkew+time.Second).Unix(), 10))},
		{"iat a string", payloadWith("iat", strconv.Quote(strconv.FormatInt(testEpoch.Unix(), 10)))},
		{"iat beyond the skew", payloadWith("iat", strconv.FormatInt(testEpoch.Add(clockSkew+time.Second).Unix(), 10))},
		{"exp a number, then again a string", strings.TrimSuffix(payloadWith("exp", future), "}") + `,"exp":"9999999999"}`},
		{"exp a string in an escaped name", strings.TrimSuffix(payloadWith("exp", future), "}") + `,"\u0065xp":"9999999999"}`},
		{"jti missing", payloadWith("jti", "")},
		{"jti not a UUID", payloadWith("jti", `"token-1"`)},
		{"jti a UUID in upper case", payloadWith("jti", `"5F0C2A8E-8D1B-4C47-9B3E-2F6A1D9C7E40"`)},
		{"jti a UUID in braces", payloadWith("jti", `"{5f0c2a8e-8d1b-4c47-9b3e-2f6a1d9c7e40}"`)},
		{"jti a number", payloadWith("jti", `7`)},
		{"payload not an object", `["sub","42"]`},
		{"payload not JSON", `sub=42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := verifier.Verify(signedPayload(t, tt.payload))
			require.ErrorIs(t, err, apperr.ErrUnauthenticated, "payload %s", tt.payload)
			require.Zero(t, id)
		})
	}
}

// The controls of the test above: claims that differ from what Issue
// writes but are what RFC 7519 allows and mean the same user.
func TestTokensWithUnusualGoodClaimsAreAccepted(t *testing.T) {
	t.Parallel()
	verifier := tokensAt(testKey, "orders-api", testEpoch)
	withinSkew := strconv.FormatInt(testEpoch.Add(clockSkew-time.Second).Unix(), 10)
	tests := []struct {
		name    string
		payload string
	}{
		{"as issued", payloadWith("sub", `"42"`)},
		{"aud a single string", payloadWith("aud", strconv.Quote(testAudience))},
		{"aud an array naming us among others", payloadWith("aud", `["another-service",`+strconv.Quote(testAudience)+`]`)},
		{"exp with a fraction", payloadWith("exp", strconv.FormatInt(testEpoch.Add(time.Hour).Unix(), 10)+".5")},
		{"exp expired within the skew", payloadWith("exp", strconv.FormatInt(testEpoch.Add(-clockSkew+time.Second).Unix(), 10))},
		{"nbf within the skew", payloadWith("nbf", withinSkew)},
		{"iat within the skew", payloadWith("iat", withinSkew)},
		{"iat missing", payloadWith("iat", "")},
		{"a string exp overridden by a number", strings.TrimSuffix(payloadWith("exp", `"9999999999"`), "}") + `,"exp":` + withinSkew + `}`},
		{"private claims", strings.TrimSuffix(payloadWith("sub", `"42"`), "}") + `,"role":"admin","exp_hint":"soon"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := verifier.Verify(signedPayload(t, tt.payload))
			require.NoError(t, err, "payload %s", tt.payload)
			require.Equal(t, int64(42), id)
		})
	}
}
