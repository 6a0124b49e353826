package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// Key is one key that signs or verifies access tokens, named by its kid.
type Key struct {
	kid      string
	alg      jwa.SignatureAlgorithm
	signer   any     // []byte, ed25519.PrivateKey or *ecdsa.PrivateKey; nil when it only verifies
	verifier any     // []byte, ed25519.PublicKey or *ecdsa.PublicKey
	public   jwk.Key // the public JWK of an asymmetric key; nil for a secret
}

// ID is the key's kid.
func (k Key) ID() string { return k.kid }

// Algorithm is what the key signs and verifies, and the only algorithm a
// token naming its kid may use.
func (k Key) Algorithm() jwa.SignatureAlgorithm { return k.alg }

// SecretKey is an HS256 key. Its kid is derived from the secret by a
// one-way hash, so it identifies the secret without revealing it; a token's
// HMAC already allows the same offline guessing of a weak secret.
func SecretKey(secret []byte) Key {
	h := sha256.New()
	h.Write([]byte("orders-api HS256 key id\x00"))
	h.Write(secret)
	kid := "hs256-" + base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:12])
	key := append([]byte(nil), secret...)
	return Key{kid: kid, alg: jwa.HS256(), signer: key, verifier: key}
}

// PrivateKeyPEM reads the key that signs tokens from PEM: an Ed25519 key
// signs EdDSA, a P-256 key ES256 (PKCS #8 "PRIVATE KEY", or SEC 1 "EC
// PRIVATE KEY" for P-256). Any other key is refused.
func PrivateKeyPEM(data []byte) (Key, error) {
	block, err := onePEMBlock(data)
	if err != nil {
		return Key{}, err
	}
	var raw any
	switch block.Type {
	case "PRIVATE KEY":
		raw, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		raw, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return Key{}, fmt.Errorf("PEM block %q is not a private key (want PRIVATE KEY or EC PRIVATE KEY)", block.Type)
	}
	if err != nil {
		return Key{}, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return asymmetricKey(jwa.EdDSA(), k, k.Public())
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return asymmetricKey(jwa.ES256(), k, k.Public())
	default:
		return Key{}, fmt.Errorf("a %T cannot sign tokens: use an Ed25519 or P-256 key", raw)
	}
}

// VerificationKeyPEM reads a retired key from PEM: a private key as
// PrivateKeyPEM reads it, or its public key ("PUBLIC KEY"). Either way the
// key only verifies.
func VerificationKeyPEM(data []byte) (Key, error) {
	block, err := onePEMBlock(data)
	if err != nil {
		return Key{}, err
	}
	if block.Type != "PUBLIC KEY" {
		key, err := PrivateKeyPEM(data)
		key.signer = nil
		return key, err
	}
	raw, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return Key{}, fmt.Errorf("parse PUBLIC KEY: %w", err)
	}
	switch k := raw.(type) {
	case ed25519.PublicKey:
		return asymmetricKey(jwa.EdDSA(), nil, k)
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("ECDSA key on %s: only P-256 (ES256) is supported", k.Curve.Params().Name)
		}
		return asymmetricKey(jwa.ES256(), nil, k)
	default:
		return Key{}, fmt.Errorf("a %T cannot verify tokens: use an Ed25519 or P-256 key", raw)
	}
}

func onePEMBlock(data []byte) (*pem.Block, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, errors.New("more than one PEM block: give one key per file")
	}
	return block, nil
}

// asymmetricKey names a key pair by the RFC 7638 thumbprint of its public
// key, so that every instance, and every verifier, derives the same kid.
func asymmetricKey(alg jwa.SignatureAlgorithm, signer crypto.Signer, public crypto.PublicKey) (Key, error) {
	pub, err := jwk.Import(public)
	if err != nil {
		return Key{}, fmt.Errorf("import public key: %w", err)
	}
	thumbprint, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return Key{}, fmt.Errorf("key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(thumbprint)
	for name, value := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: jwk.ForSignature} {
		if err := pub.Set(name, value); err != nil {
			return Key{}, fmt.Errorf("set %s of public key: %w", name, err)
		}
	}
	k := Key{kid: kid, alg: alg, verifier: public, public: pub}
	if signer != nil {
		k.signer = signer
	}
	return k, nil
}

// Keys are the keys of Tokens: one signs every token issued; it and the
// previous keys verify. A token is verified only with the key its kid
// names, and only with that key's algorithm, so a token cannot choose how
// it is checked (an HS256 token "signed" with a public key's bytes names an
// EdDSA or ES256 key and is refused).
type Keys struct {
	signing Key
	byID    map[string]Key
	all     []Key // signing first, then previous, as configured
	// secrets verify tokens without a kid, as tokens were issued before
	// they carried one: HS256 only.
	secrets []Key
	jwks    []byte // the public keys as a JWK set; nil when there are none
}

// NewKeys returns the keys that sign with signing and verify with signing
// and previous. A previous key equal to the signing key, or named twice, is
// used once.
func NewKeys(signing Key, previous ...Key) (*Keys, error) {
	if signing.signer == nil {
		return nil, errors.New("the signing key has no private part")
	}
	k := &Keys{signing: signing, byID: map[string]Key{}}
	for _, key := range append([]Key{signing}, previous...) {
		if _, dup := k.byID[key.kid]; dup {
			continue
		}
		k.byID[key.kid] = key
		k.all = append(k.all, key)
		if key.alg == jwa.HS256() {
			k.secrets = append(k.secrets, key)
		}
	}
	jwks, err := k.publicSet()
	if err != nil {
		return nil, err
	}
	k.jwks = jwks
	return k, nil
}

// Signing is the key that signs issued tokens.
func (k *Keys) Signing() Key { return k.signing }

// JWKS is the JWK set (RFC 7517) of the public keys, the signing one first,
// with kid, alg and use; nil when no key is asymmetric. A secret is never in
// it.
func (k *Keys) JWKS() []byte { return k.jwks }

func (k *Keys) publicSet() ([]byte, error) {
	set := jwk.NewSet()
	for _, key := range k.all {
		if key.public == nil {
			continue
		}
		if err := set.AddKey(key.public); err != nil {
			return nil, fmt.Errorf("add key %s to the JWK set: %w", key.kid, err)
		}
	}
	if set.Len() == 0 {
		return nil, nil
	}
	return json.Marshal(set)
}

// FetchKeys implements jws.KeyProvider: the key the token's kid names, if
// the token's alg is that key's; without a kid, the HS256 secrets.
func (k *Keys) FetchKeys(_ context.Context, sink jws.KeySink, sig *jws.Signature, _ *jws.Message) error {
	headers := sig.ProtectedHeaders()
	alg, ok := headers.Algorithm()
	if !ok {
		return errors.New("token names no algorithm")
	}
	kid, ok := headers.KeyID()
	if !ok {
		if alg != jwa.HS256() {
			return fmt.Errorf("token without kid signed with %s", alg)
		}
		for _, key := range k.secrets {
			sink.Key(key.alg, key.verifier)
		}
		return nil
	}
	key, ok := k.byID[kid]
	switch {
	case !ok:
		return errors.New("token names an unknown kid")
	case key.alg != alg:
		return fmt.Errorf("token signed with %s names a %s key", alg, key.alg)
	}
	sink.Key(key.alg, key.verifier)
	return nil
}
