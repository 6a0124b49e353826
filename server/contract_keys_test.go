package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

// keyFile writes a private key as PKCS #8 PEM into a file of the test and
// returns its path.
func keyFile(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return writePEM(t, "PRIVATE KEY", der)
}

// publicKeyFile writes the public key as PKIX PEM.
func publicKeyFile(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	require.NoError(t, err)
	return writePEM(t, "PUBLIC KEY", der)
}

func writePEM(t *testing.T, kind string, der []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "key-*.pem")
	require.NoError(t, err)
	require.NoError(t, pem.Encode(f, &pem.Block{Type: kind, Bytes: der}))
	require.NoError(t, f.Close())
	return filepath.Clean(f.Name())
}

func newEd25519Key(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return key
}

func newP256Key(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return key
}

// tokenHeader decodes the protected header of a JWT.
func tokenHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(b, &h))
	return h
}

// getJWKS fetches the JWK set through the typed client, which validates
// the answer against the contract (no member beyond the public ones).
func getJWKS(t *testing.T, s *contractServer) *client.GetJwksResponse {
	t.Helper()
	r, err := s.Client.GetJwksWithResponse(t.Context())
	require.NoError(t, err)
	return r
}

func kidsOf(set *client.JWKSet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// Another service verifies the API's tokens from the served JWKS alone:
// jwx fetches the set over HTTP and checks a token by its kid and the alg
// the set states, knowing nothing else of the API.
func TestJWKSVerifiesTokensIndependently(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		key any
		alg string
		kty client.JWKKty
	}{
		"Ed25519": {newEd25519Key(t), "EdDSA", client.JWKKtyOKP},
		"P-256":   {newP256Key(t), "ES256", client.JWKKtyEC},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startContractServer(t, map[string]string{"JWT_PRIVATE_KEY_FILE": keyFile(t, tc.key)}, nil)
			u := newUser(t, s)
			h := tokenHeader(t, u.Token)
			require.Equal(t, tc.alg, h["alg"])

			r := getJWKS(t, s)
			require.Equal(t, http.StatusOK, r.StatusCode(), "%s", r.Body)
			require.Equal(t, "public, max-age=300", r.HTTPResponse.Header.Get("Cache-Control"))
			require.Len(t, r.JSON200.Keys, 1)
			k := r.JSON200.Keys[0]
			require.Equal(t, h["kid"], k.Kid)
			require.Equal(t, client.JWKAlg(tc.alg), k.Alg)
			require.Equal(t, client.JWKUseSig, k.Use)
			require.Equal(t, tc.kty, k.Kty)
			require.NotContains(t, string(r.Body), `"d"`, "no private part")

			set, err := jwk.Fetch(context.Background(), s.URL+"/.well-known/jwks.json")
			require.NoError(t, err)
			tok, err := jwt.ParseString(u.Token, jwt.WithKeySet(set),
				jwt.WithIssuer("orders-api"), jwt.WithAudience("orders-api"), jwt.WithValidate(true))
			require.NoError(t, err, "an independent verifier with the JWKS alone")
			sub, _ := tok.Subject()
			require.Equal(t, strconv.FormatInt(u.ID, 10), sub)

			forged := forgedToken(t, u.Token, u.ID+1)
			_, err = jwt.ParseString(forged, jwt.WithKeySet(set))
			require.Error(t, err, "the independent verifier refuses a forged token too")
		})
	}
}

// With a shared secret there is nothing to publish: 404, and the secret is
// never in any answer.
func TestNoJWKSWithASharedSecret(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	r := getJWKS(t, s)
	require.Equal(t, http.StatusNotFound, r.StatusCode(), "%s", r.Body)
	require.Equal(t, "application/problem+json", r.HTTPResponse.Header.Get("Content-Type"))
	require.NotContains(t, string(r.Body), base64.RawURLEncoding.EncodeToString([]byte(testJWTSecret)))
	require.Equal(t, http.StatusNotFound, s.do(t, "GET", "/.well-known/jwks.json/", "", nil, "").Status, "a file, not a directory")
}

// Rotation across restarts, on one database: each step starts instances
// with the next configuration, and nobody holding a token of the step
// before is logged out.
func TestKeyRotationAcrossRestarts(t *testing.T) {
	t.Parallel()
	const secret1, secret2 = "first-secret-0123456789abcdef-0123456789", "second-secret-0123456789abcdef-012345678"
	ed, es := newEd25519Key(t), newP256Key(t)
	dbURL := ""
	start := func(env map[string]string) *contractServer {
		t.Helper()
		if dbURL != "" {
			env["DATABASE_URL"] = dbURL
		}
		ts := startServer(t, env)
		dbURL = ts.DBURL
		return newContractServer(t, ts.URL, ts.DBURL, newObserved())
	}
	status := func(s *contractServer, u testUser, token string) int { return accessStatus(t, s, u.ID, token) }

	v1 := start(map[string]string{"JWT_SECRET": secret1})
	u := newUser(t, v1)
	token1 := u.Token

	// The secret rotates: the old one verifies, the new one signs.
	v2 := start(map[string]string{"JWT_SECRET": secret2, "JWT_PREVIOUS_SECRETS": secret1})
	require.Equal(t, http.StatusOK, status(v2, u, token1), "a token of the old secret")
	refreshed := refreshWith(t, v2, u.Refresh) // a refresh token survives any key change
	require.Equal(t, http.StatusOK, refreshed.StatusCode(), "%s", refreshed.Body)
	token2 := refreshed.JSON200.AccessToken
	require.NotEqual(t, tokenHeader(t, token1)["kid"], tokenHeader(t, token2)["kid"], "the new secret has its own kid")
	require.Equal(t, http.StatusUnauthorized, status(v1, u, token2), "an instance without the new secret cannot know it")

	// Once the old tokens have expired, the old secret goes.
	v3 := start(map[string]string{"JWT_SECRET": secret2})
	require.Equal(t, http.StatusUnauthorized, status(v3, u, token1))
	require.Equal(t, http.StatusOK, status(v3, u, token2))

	// Moving to a private key: JWT_SECRET now only verifies.
	v4 := start(map[string]string{"JWT_SECRET": secret2, "JWT_PRIVATE_KEY_FILE": keyFile(t, ed)})
	require.Equal(t, http.StatusOK, status(v4, u, token2))
	token4 := loginGrant(t, v4, u.Email, u.Password).AccessToken
	require.Equal(t, "EdDSA", tokenHeader(t, token4)["alg"])
	jwks := getJWKS(t, v4)
	require.Equal(t, http.StatusOK, jwks.StatusCode())
	require.Equal(t, []string{tokenHeader(t, token4)["kid"].(string)}, kidsOf(jwks.JSON200), "the secret is not published")

	// The key rotates: the retired one (its public half is enough) verifies.
	v5 := start(map[string]string{"JWT_SECRET": "", "JWT_PRIVATE_KEY_FILE": keyFile(t, es), "JWT_PREVIOUS_KEY_FILES": publicKeyFile(t, ed.Public())})
	require.Equal(t, http.StatusOK, status(v5, u, token4))
	require.Equal(t, http.StatusUnauthorized, status(v5, u, token2), "the secret is gone")
	token5 := loginGrant(t, v5, u.Email, u.Password).AccessToken
	require.Equal(t, "ES256", tokenHeader(t, token5)["alg"])
	jwks = getJWKS(t, v5)
	require.Equal(t, http.StatusOK, jwks.StatusCode())
	require.Equal(t, []string{tokenHeader(t, token5)["kid"].(string), tokenHeader(t, token4)["kid"].(string)}, kidsOf(jwks.JSON200),
		"the signing key first, then the retired one")
}

// The key configuration is checked at start, naming the variable.
func TestBadKeyConfigurationStopsTheStart(t *testing.T) {
	t.Parallel()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing key file", map[string]string{"JWT_PRIVATE_KEY_FILE": filepath.Join(t.TempDir(), "none.pem")}, "JWT_PRIVATE_KEY_FILE"},
		{"a P-384 key", map[string]string{"JWT_PRIVATE_KEY_FILE": keyFile(t, p384)}, "only P-256"},
		{"a public key to sign with", map[string]string{"JWT_PRIVATE_KEY_FILE": publicKeyFile(t, newEd25519Key(t).Public())}, "JWT_PRIVATE_KEY_FILE"},
		{"a bad previous key", map[string]string{"JWT_PREVIOUS_KEY_FILES": writePEM(t, "PUBLIC KEY", []byte("x"))}, "JWT_PREVIOUS_KEY_FILES"},
		{"a short previous secret", map[string]string{"JWT_PREVIOUS_SECRETS": "short"}, "JWT_PREVIOUS_SECRETS"},
		{"no key at all", map[string]string{"JWT_SECRET": ""}, "JWT_PRIVATE_KEY_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vars := map[string]string{"JWT_SECRET": testJWTSecret, "HTTP_ADDR": "127.0.0.1:0", "DATABASE_URL": "postgres://postgres@127.0.0.1:1/none"}
			for k, v := range tt.env {
				vars[k] = v
			}
			err := run(t.Context(), nil, func(k string) string { return vars[k] }, &strings.Builder{})
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// Algorithm confusion against the running API: HS256 tokens "signed" with
// what the JWKS publishes of an EdDSA key, in every form an attacker could
// take it, are refused; only the key's own signature is accepted.
func TestAlgorithmConfusionIsRefused(t *testing.T) {
	t.Parallel()
	ed := newEd25519Key(t)
	s := startContractServer(t, map[string]string{"JWT_PRIVATE_KEY_FILE": keyFile(t, ed), "JWT_SECRET": ""}, nil)
	u := newUser(t, s)
	jwks := getJWKS(t, s)
	require.Equal(t, http.StatusOK, jwks.StatusCode())
	published := jwks.JSON200.Keys[0]
	x, err := base64.RawURLEncoding.DecodeString(published.X)
	require.NoError(t, err)
	pemBytes, err := os.ReadFile(publicKeyFile(t, ed.Public()))
	require.NoError(t, err)

	claims := validPayload(u.ID, nil)
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	sign := func(alg jwa.SignatureAlgorithm, key any, kid string) string {
		h := jws.NewHeaders()
		if kid != "" {
			require.NoError(t, h.Set(jws.KeyIDKey, kid))
		}
		b, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
		require.NoError(t, err)
		return string(b)
	}
	for name, token := range map[string]string{
		"HS256 keyed with the key's x":      sign(jwa.HS256(), x, published.Kid),
		"HS256 keyed with x as published":   sign(jwa.HS256(), []byte(published.X), published.Kid),
		"HS256 keyed with the public PEM":   sign(jwa.HS256(), pemBytes, published.Kid),
		"HS256 keyed with the JWKS":         sign(jwa.HS256(), jwks.Body, published.Kid),
		"HS256 keyed with x, no kid":        sign(jwa.HS256(), x, ""),
		"EdDSA by another key with our kid": sign(jwa.EdDSA(), newEd25519Key(t), published.Kid),
		"ES256 naming our kid":              sign(jwa.ES256(), newP256Key(t), published.Kid),
		"HS256 keyed with a secret not set": sign(jwa.HS256(), []byte(testJWTSecret), ""),
	} {
		require.Equal(t, http.StatusUnauthorized, accessStatus(t, s, u.ID, token), name)
	}
	require.Equal(t, http.StatusOK, accessStatus(t, s, u.ID, sign(jwa.EdDSA(), ed, published.Kid)), "the control: the key's own signature")
}
