package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/ordersvc/orders/internal/apperr"
)

// TokenSettings are what Tokens signs with and what it demands of a token.
type TokenSettings struct {
	Keys     *Keys         // the key that signs, and all the keys that verify
	Issuer   string        // iss of issued tokens; a token from another issuer is refused
	Audience string        // aud of issued tokens; a token whose aud does not name it is refused
	TTL      time.Duration // lifetime of issued tokens
	// Revocations, when set, are checked on every Verify; nil revokes
	// nothing (tests of the claims alone).
	Revocations *Revocations
}

// clockSkew is how far the clocks of the API instances may disagree: a
// token is still accepted this long after its exp, and its nbf and iat may
// lie this far in the future.
const clockSkew = 5 * time.Second

// Tokens issues and verifies JWTs carrying sub (the user id), iss, aud,
// iat, exp and jti, signed by the signing key of its Keys with that key's
// kid in the header.
type Tokens struct {
	settings TokenSettings
	now      func() time.Time

	// verified remembers tokens that passed the signature and claim checks,
	// until they expire: parsing and checking a JWT is a large share of a
	// request's CPU (docs/decisions.md), and a client sends the same token
	// many times.
	// Keyed by the whole token, so only an identical, already verified
	// token is answered from it; bounded, and emptied when full. Revocation
	// is checked after it, on every Verify, so it never outlives one.
	mu       sync.Mutex
	verified map[string]AccessToken
}

// AccessToken is what Tokens knows of a token it issued or verified.
type AccessToken struct {
	Token   string
	UserID  int64
	ID      uuid.UUID // the jti
	Expires time.Time
}

// maxVerified bounds the verified-token cache (about 300 bytes an entry).
const maxVerified = 10_000

// NewTokens returns a Tokens with the given settings.
func NewTokens(settings TokenSettings) *Tokens {
	return &Tokens{settings: settings, now: time.Now, verified: map[string]AccessToken{}}
}

// TTL is the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.settings.TTL }

// Issue returns a signed token for userID.
func (t *Tokens) Issue(userID int64) (AccessToken, error) {
	now := t.now()
	issued := AccessToken{UserID: userID, ID: uuid.New(), Expires: now.Add(t.settings.TTL).Truncate(time.Second)}
	tok, err := jwt.NewBuilder().
		Subject(strconv.FormatInt(userID, 10)).
		Issuer(t.settings.Issuer).
		Audience([]string{t.settings.Audience}).
		IssuedAt(now).
		Expiration(issued.Expires).
		JwtID(issued.ID.String()).
		Build()
	if err != nil {
		return AccessToken{}, fmt.Errorf("build token: %w", err)
	}
	key := t.settings.Keys.Signing()
	headers := jws.NewHeaders()
	if err := headers.Set(jws.KeyIDKey, key.kid); err != nil {
		return AccessToken{}, fmt.Errorf("set kid: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(key.alg, key.signer, jws.WithProtectedHeaders(headers)))
	if err != nil {
		return AccessToken{}, fmt.Errorf("sign token: %w", err)
	}
	issued.Token = string(signed)
	return issued, nil
}

// Verify checks signature, algorithm, issuer, audience, the times and
// revocation, and returns the user id.
func (t *Tokens) Verify(raw string) (int64, error) {
	tok, err := t.Inspect(raw)
	if err != nil {
		return 0, err
	}
	if t.settings.Revocations != nil {
		if err := t.settings.Revocations.check(tok.ID); err != nil {
			return 0, err
		}
	}
	return tok.UserID, nil
}

// noteRevoked applies revocations this instance has just committed, ahead
// of their notification.
func (t *Tokens) noteRevoked(revoked []revokedToken) {
	if t.settings.Revocations == nil {
		return
	}
	for _, r := range revoked {
		t.settings.Revocations.add(r.jti, r.expires)
	}
}

// Inspect is Verify without the revocation check: what a genuine token,
// revoked or not, says.
func (t *Tokens) Inspect(raw string) (AccessToken, error) {
	now := t.now()
	t.mu.Lock()
	v, ok := t.verified[raw]
	t.mu.Unlock()
	if ok && now.Before(v.Expires) {
		return v, nil
	}
	v, err := t.verify(raw)
	if err != nil {
		return AccessToken{}, fmt.Errorf("%w: %w", apperr.ErrUnauthenticated, err)
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[raw] = v
	t.mu.Unlock()
	return v, nil
}

func (t *Tokens) verify(raw string) (AccessToken, error) {
	tok, err := jwt.ParseString(raw,
		jwt.WithKeyProvider(t.settings.Keys),
		jwt.WithValidate(true),
		jwt.WithIssuer(t.settings.Issuer),
		jwt.WithAudience(t.settings.Audience),
		jwt.WithClock(jwt.ClockFunc(t.now)),
		jwt.WithAcceptableSkew(clockSkew),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
		jwt.WithRequiredClaim(jwt.JwtIDKey),
	)
	if err != nil {
		return AccessToken{}, err
	}
	if err := checkNumericDates(raw); err != nil {
		return AccessToken{}, err
	}
	sub, _ := tok.Subject()
	id, err := userIDOf(sub)
	if err != nil {
		return AccessToken{}, err
	}
	jti, _ := tok.JwtID() // required above
	tokenID, err := uuid.Parse(jti)
	if err != nil || tokenID.String() != jti {
		return AccessToken{}, errors.New("jti is not a token id")
	}
	expires, _ := tok.Expiration() // required above
	return AccessToken{Token: raw, UserID: id, ID: tokenID, Expires: expires}, nil
}

// userIDOf reads a subject written by Issue: the canonical decimal form of a
// positive id, so that no other spelling ("+7", "07", " 7") names the user.
func userIDOf(sub string) (int64, error) {
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id < 1 || strconv.FormatInt(id, 10) != sub {
		return 0, fmt.Errorf("subject %q is not a user id", sub)
	}
	return id, nil
}

// numericDateClaims are the claims RFC 7519 defines as NumericDate values.
var numericDateClaims = []string{jwt.ExpirationKey, jwt.NotBeforeKey, jwt.IssuedAtKey}

// checkNumericDates refuses a token whose exp, nbf or iat is not a JSON
// number. jwx also reads a string there ("9999999999", even RFC 3339 text),
// which RFC 7519 does not allow and Issue never writes, so the payload that
// jwx verified is read again as plain JSON. Both readers keep the last of
// duplicate names, so they see the same claims.
func checkNumericDates(compact string) error {
	parts := strings.Split(compact, ".")
	if len(parts) != 3 {
		return errors.New("token is not in compact serialization")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("token payload: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	var claims map[string]any
	if err := dec.Decode(&claims); err != nil {
		return fmt.Errorf("token payload: %w", err)
	}
	for _, name := range numericDateClaims {
		if v, ok := claims[name]; ok {
			if _, isNumber := v.(json.Number); !isNumber {
				return fmt.Errorf("claim %s is not a number", name)
			}
		}
	}
	return nil
}
