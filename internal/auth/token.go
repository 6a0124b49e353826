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
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/ordersvc/orders/internal/apperr"
)

// TokenSettings are what Tokens signs with and what it demands of a token.
type TokenSettings struct {
	Key      []byte        // HS256 key
	Issuer   string        // iss of issued tokens; a token from another issuer is refused
	Audience string        // aud of issued tokens; a token whose aud does not name it is refused
	TTL      time.Duration // lifetime of issued tokens
}

// clockSkew is how far the clocks of the API instances may disagree: a
// token is still accepted this long after its exp, and its nbf and iat may
// lie this far in the future.
const clockSkew = 5 * time.Second

// Tokens issues and verifies HS256 JWTs carrying sub (the user id), iss,
// aud, iat, exp and jti.
type Tokens struct {
	settings TokenSettings
	now      func() time.Time

	// verified remembers tokens that passed Verify, until they expire:
	// parsing and checking a JWT was a fifth of the API's CPU per request,
	// and a client sends the same token many times. Keyed by the whole
	// token, so only an identical, already verified token is answered from
	// it; bounded, and emptied when full.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

type verifiedToken struct {
	userID  int64
	expires time.Time
}

// maxVerified bounds the verified-token cache (about 300 bytes an entry).
const maxVerified = 10_000

// NewTokens returns a Tokens with the given settings.
func NewTokens(settings TokenSettings) *Tokens {
	return &Tokens{settings: settings, now: time.Now, verified: map[string]verifiedToken{}}
}

// TTL is the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.settings.TTL }

// Issue returns a signed token for userID.
func (t *Tokens) Issue(userID int64) (string, error) {
	now := t.now()
	tok, err := jwt.NewBuilder().
		Subject(strconv.FormatInt(userID, 10)).
		Issuer(t.settings.Issuer).
		Audience([]string{t.settings.Audience}).
		IssuedAt(now).
		Expiration(now.Add(t.settings.TTL)).
		JwtID(uuid.NewString()).
		Build()
	if err != nil {
		return "", fmt.Errorf("build token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), t.settings.Key))
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return string(signed), nil
}

// Verify checks signature, algorithm, issuer, audience and the times, and
// returns the user id.
func (t *Tokens) Verify(raw string) (int64, error) {
	now := t.now()
	t.mu.Lock()
	v, ok := t.verified[raw]
	t.mu.Unlock()
	if ok && now.Before(v.expires) {
		return v.userID, nil
	}
	id, expires, err := t.verify(raw)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", apperr.ErrUnauthenticated, err)
	}
	t.mu.Lock()
	if len(t.verified) >= maxVerified {
		clear(t.verified)
	}
	t.verified[raw] = verifiedToken{userID: id, expires: expires}
	t.mu.Unlock()
	return id, nil
}

func (t *Tokens) verify(raw string) (int64, time.Time, error) {
	tok, err := jwt.ParseString(raw,
		jwt.WithKey(jwa.HS256(), t.settings.Key),
		jwt.WithValidate(true),
		jwt.WithIssuer(t.settings.Issuer),
		jwt.WithAudience(t.settings.Audience),
		jwt.WithClock(jwt.ClockFunc(t.now)),
		jwt.WithAcceptableSkew(clockSkew),
		jwt.WithRequiredClaim(jwt.ExpirationKey),
	)
	if err != nil {
		return 0, time.Time{}, err
	}
	if err := checkNumericDates(raw); err != nil {
		return 0, time.Time{}, err
	}
	sub, _ := tok.Subject()
	id, err := userIDOf(sub)
	if err != nil {
		return 0, time.Time{}, err
	}
	expires, _ := tok.Expiration() // required above
	return id, expires, nil
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
