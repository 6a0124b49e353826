package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

// pemOf encodes der as one PEM block.
func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func pkcs8(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	return pemOf("PRIVATE KEY", der)
}

func pkix(t testing.TB, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	require.NoError(t, err)
	return pemOf("PUBLIC KEY", der)
}

func newEd25519(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return priv
}

func newECDSA(t testing.TB, curve elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(curve, rand.Reader)
	require.NoError(t, err)
	return priv
}

func privateKey(t testing.TB, pemData []byte) Key {
	t.Helper()
	k, err := PrivateKeyPEM(pemData)
	require.NoError(t, err)
	return k
}

func verificationKey(t testing.TB, pemData []byte) Key {
	t.Helper()
	k, err := VerificationKeyPEM(pemData)
	require.NoError(t, err)
	return k
}

func mustKeys(t testing.TB, signing Key, previous ...Key) *Keys {
	t.Helper()
	keys, err := NewKeys(signing, previous...)
	require.NoError(t, err)
	return keys
}

// tokensWith returns a Tokens with the given keys and a clock stopped at testEpoch.
func tokensWith(keys *Keys) *Tokens {
	settings := testSettings(30 * time.Minute)
	settings.Keys = keys
	tokens := NewTokens(settings)
	tokens.now = func() time.Time { return testEpoch }
	return tokens
}

// header decodes a token's protected header.
func header(t *testing.T, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	require.NoError(t, err)
	var h map[string]any
	require.NoError(t, json.Unmarshal(b, &h))
	return h
}

func TestPrivateKeyPEM(t *testing.T) {
	t.Parallel()
	ed := newEd25519(t)
	p256 := newECDSA(t, elliptic.P256())
	sec1, err := x509.MarshalECPrivateKey(p256)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	good := []struct {
		name string
		pem  []byte
		alg  jwa.SignatureAlgorithm
	}{
		{"Ed25519 PKCS #8", pkcs8(t, ed), jwa.EdDSA()},
		{"P-256 PKCS #8", pkcs8(t, p256), jwa.ES256()},
		{"P-256 SEC 1", pemOf("EC PRIVATE KEY", sec1), jwa.ES256()},
	}
	for _, tt := range good {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := PrivateKeyPEM(tt.pem)
			require.NoError(t, err)
			require.Equal(t, tt.alg, key.Algorithm())
			require.Len(t, key.ID(), 43, "an RFC 7638 SHA-256 thumbprint in base64url")
			again, err := PrivateKeyPEM(tt.pem)
			require.NoError(t, err)
			require.Equal(t, key.ID(), again.ID(), "the kid is derived from the key, the same on every instance")
		})
	}
	samePair := privateKey(t, pkcs8(t, p256))
	sec1Key := privateKey(t, pemOf("EC PRIVATE KEY", sec1))
	require.Equal(t, samePair.ID(), sec1Key.ID(), "one key in two encodings has one kid")

	bad := []struct {
		name, pem, want string
	}{
		{"P-384", string(pkcs8(t, newECDSA(t, elliptic.P384()))), "only P-256"},
		{"RSA", string(pkcs8(t, rsaKey)), "Ed25519 or P-256"},
		{"a public key", string(pkix(t, ed.Public())), "not a private key"},
		{"not PEM", "-----BEGIN NOTHING", "no PEM block"},
		{"two keys", string(pkcs8(t, ed)) + string(pkcs8(t, p256)), "one key per file"},
		{"garbage inside", string(pemOf("PRIVATE KEY", []byte("garbage"))), "parse PRIVATE KEY"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := PrivateKeyPEM([]byte(tt.pem))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
		})
	}
}

// A retired key verifies, from its private or its public PEM, and never signs.
func TestVerificationKeyPEM(t *testing.T) {
	t.Parallel()
	ed := newEd25519(t)
	fromPrivate := verificationKey(t, pkcs8(t, ed))
	fromPublic := verificationKey(t, pkix(t, ed.Public()))
	require.Equal(t, fromPrivate.ID(), fromPublic.ID())
	require.Nil(t, fromPrivate.signer)

	_, err := NewKeys(fromPublic)
	require.Error(t, err, "a key without its private part cannot sign")

	_, err = VerificationKeyPEM(pkix(t, newECDSA(t, elliptic.P384()).Public()))
	require.ErrorContains(t, err, "only P-256")
}

func TestSecretKeyID(t *testing.T) {
	t.Parallel()
	a, b := SecretKey(testKey), SecretKey([]byte("another-key-another-key-another-"))
	require.Equal(t, a.ID(), SecretKey(testKey).ID(), "stable")
	require.NotEqual(t, a.ID(), b.ID())
	require.NotContains(t, a.ID(), string(testKey[:8]))
	require.NotContains(t, a.ID(), base64.RawURLEncoding.EncodeToString(testKey)[:8])
}

// Issued tokens name their key; tokens of every configured key verify, and
// only the signing key signs.
func TestTokensNameTheirKey(t *testing.T) {
	t.Parallel()
	old := SecretKey([]byte("the-previous-secret-0123456789abcdef"))
	ed := privateKey(t, pkcs8(t, newEd25519(t)))
	es := privateKey(t, pkcs8(t, newECDSA(t, elliptic.P256())))

	for _, signing := range []Key{SecretKey(testKey), ed, es} {
		t.Run(signing.Algorithm().String(), func(t *testing.T) {
			t.Parallel()
			tokens := tokensWith(mustKeys(t, signing, old))
			raw := issue(t, tokens, 42)
			h := header(t, raw)
			require.Equal(t, signing.ID(), h["kid"])
			require.Equal(t, signing.Algorithm().String(), h["alg"])
			id, err := tokens.Verify(raw)
			require.NoError(t, err)
			require.Equal(t, int64(42), id)

			fromOld := issue(t, tokensWith(mustKeys(t, old)), 7)
			require.Equal(t, old.ID(), header(t, fromOld)["kid"])
			id, err = tokens.Verify(fromOld)
			require.NoError(t, err, "a previous key still verifies")
			require.Equal(t, int64(7), id)

			_, err = tokensWith(mustKeys(t, signing)).Verify(fromOld)
			require.ErrorIs(t, err, apperr.ErrUnauthenticated, "without the previous key its tokens are refused")
		})
	}
}

// Tokens issued before tokens carried kid verify with the HS256 secrets,
// current or previous, and with nothing else.
func TestTokensWithoutKid(t *testing.T) {
	t.Parallel()
	previous := []byte("the-previous-secret-0123456789abcdef")
	legacy := signedPayload(t, payloadWith("sub", `"42"`)) // HS256 with testKey, no kid
	require.NotContains(t, header(t, legacy), "kid")

	id, err := tokensWith(mustKeys(t, SecretKey(testKey))).Verify(legacy)
	require.NoError(t, err)
	require.Equal(t, int64(42), id)
	id, err = tokensWith(mustKeys(t, SecretKey(previous), SecretKey(testKey))).Verify(legacy)
	require.NoError(t, err, "the secret is a previous one now")
	require.Equal(t, int64(42), id)

	ed := privateKey(t, pkcs8(t, newEd25519(t)))
	_, err = tokensWith(mustKeys(t, ed)).Verify(legacy)
	require.ErrorIs(t, err, apperr.ErrUnauthenticated, "no secret configured")

	// An EdDSA token without kid is not tried against anything.
	noKid, err := jws.Sign([]byte(payloadWith("sub", `"42"`)), jws.WithKey(jwa.EdDSA(), ed.signer))
	require.NoError(t, err)
	_, err = tokensWith(mustKeys(t, ed)).Verify(string(noKid))
	require.ErrorIs(t, err, apperr.ErrUnauthenticated)
}

// withKid signs payload with alg and key, naming kid in the header.
func withKid(t *testing.T, alg jwa.SignatureAlgorithm, key any, kid, payload string) string {
	t.Helper()
	h := jws.NewHeaders()
	require.NoError(t, h.Set(jws.KeyIDKey, kid))
	b, err := jws.Sign([]byte(payload), jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	require.NoError(t, err)
	return string(b)
}

// Algorithm confusion: a token cannot choose how it is checked. An HS256
// token "signed" with the bytes of a public key (raw, PEM, as the JWKS
// publishes it) names an asymmetric key and is refused; so is a token
// whose alg is not its key's.
func TestAlgorithmConfusionIsRefused(t *testing.T) {
	t.Parallel()
	edPriv := newEd25519(t)
	ecPriv := newECDSA(t, elliptic.P256())
	ed := privateKey(t, pkcs8(t, edPriv))
	es := privateKey(t, pkcs8(t, ecPriv))
	secret := SecretKey(testKey)
	tokens := tokensWith(mustKeys(t, ed, es, secret))
	payload := payloadWith("sub", `"42"`)

	var published struct {
		Keys []map[string]string `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(tokens.settings.Keys.JWKS(), &published))
	require.Len(t, published.Keys, 2)
	edX, err := base64.RawURLEncoding.DecodeString(published.Keys[0]["x"])
	require.NoError(t, err)
	ecDER, err := x509.MarshalPKIXPublicKey(ecPriv.Public())
	require.NoError(t, err)
	otherEC := newECDSA(t, elliptic.P256())

	tests := map[string]string{
		"HS256 keyed with the raw Ed25519 public key": withKid(t, jwa.HS256(), []byte(edPriv.Public().(ed25519.PublicKey)), ed.ID(), payload),
		"HS256 keyed with the Ed25519 public PEM":     withKid(t, jwa.HS256(), pkix(t, edPriv.Public()), ed.ID(), payload),
		"HS256 keyed with the JWKS x":                 withKid(t, jwa.HS256(), edX, ed.ID(), payload),
		"HS256 keyed with the JWKS entry":             withKid(t, jwa.HS256(), []byte(published.Keys[0]["x"]), ed.ID(), payload),
		"HS256 keyed with the P-256 public DER":       withKid(t, jwa.HS256(), ecDER, es.ID(), payload),
		"HS256 keyed with the P-256 public PEM":       withKid(t, jwa.HS256(), pkix(t, ecPriv.Public()), es.ID(), payload),
		"HS256 with the public PEM and no kid":        signedWith(t, jwa.HS256(), pkix(t, edPriv.Public()), payload),
		"ES256 token naming the EdDSA key":            withKid(t, jwa.ES256(), ecPriv, ed.ID(), payload),
		"EdDSA token naming the ES256 key":            withKid(t, jwa.EdDSA(), edPriv, es.ID(), payload),
		"HS512 with the secret naming its kid":        withKid(t, jwa.HS512(), testKey, secret.ID(), payload),
		"ES256 by another P-256 key with our kid":     withKid(t, jwa.ES256(), otherEC, es.ID(), payload),
		"unknown kid":         withKid(t, jwa.HS256(), testKey, "no-such-key", payload),
		"alg none with a kid": b64json(t, map[string]string{"alg": "none", "kid": ed.ID()}) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".",
		"EdDSA naming the secret's kid, signed by ours": withKid(t, jwa.EdDSA(), edPriv, secret.ID(), payload),
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			id, err := tokens.Verify(token)
			require.ErrorIs(t, err, apperr.ErrUnauthenticated)
			require.Zero(t, id)
		})
	}

	// The controls: the same payload, signed as the keys sign it, verifies.
	for _, key := range []Key{ed, es, secret} {
		id, err := tokens.Verify(withKid(t, key.alg, key.signer, key.ID(), payload))
		require.NoError(t, err, key.alg.String())
		require.Equal(t, int64(42), id)
	}
}

func signedWith(t *testing.T, alg jwa.SignatureAlgorithm, key any, payload string) string {
	t.Helper()
	b, err := jws.Sign([]byte(payload), jws.WithKey(alg, key))
	require.NoError(t, err)
	return string(b)
}

// The JWKS holds the public keys, signing first, with kid, alg and use, and
// no private part; secrets are never in it.
func TestJWKSPublishesPublicKeysOnly(t *testing.T) {
	t.Parallel()
	edPriv := newEd25519(t)
	ed := privateKey(t, pkcs8(t, edPriv))
	es := verificationKey(t, pkcs8(t, newECDSA(t, elliptic.P256())))
	keys := mustKeys(t, ed, es, SecretKey(testKey))

	raw := keys.JWKS()
	require.NotNil(t, raw)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	require.NoError(t, json.Unmarshal(raw, &set))
	require.Len(t, set.Keys, 2, "the secret is not published")
	require.Equal(t, map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": ed.ID(), "alg": "EdDSA", "use": "sig", "x": set.Keys[0]["x"]}, set.Keys[0])
	require.Equal(t, es.ID(), set.Keys[1]["kid"])
	require.Equal(t, "ES256", set.Keys[1]["alg"])
	for _, k := range set.Keys {
		require.NotContains(t, k, "d", "no private part")
		require.NotContains(t, k, "k", "no secret")
	}
	require.NotContains(t, string(raw), base64.RawURLEncoding.EncodeToString(edPriv.Seed()))
	require.NotContains(t, string(raw), base64.RawURLEncoding.EncodeToString(testKey))

	require.Nil(t, mustKeys(t, SecretKey(testKey)).JWKS(), "with secrets only there is no JWKS")

	// An independent verifier, holding only the published set, verifies the
	// tokens as jwx does it: by kid, with the alg the set states.
	published, err := jwk.Parse(raw)
	require.NoError(t, err)
	token := issue(t, tokensWith(keys), 42)
	parsed, err := jwt.ParseString(token, jwt.WithKeySet(published), jwt.WithValidate(false))
	require.NoError(t, err)
	sub, _ := parsed.Subject()
	require.Equal(t, "42", sub)
}
