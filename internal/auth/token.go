package auth

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/ordersvc/orders/internal/apperr"
)

// Tokens issues and verifies HS256 JWTs carrying sub (the user id), iat, exp,
// iss and jti.
type Tokens struct {
	key    []byte
	issuer string
	ttl    time.Duration
	now    func() time.Time

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

// NewTokens returns a Tokens signing with key.
func NewTokens(key []byte, issuer string, ttl time.Duration) *Tokens {
	return &Tokens{key: key, issuer: issuer, ttl: ttl, now: time.Now, verified: map[string]verifiedToken{}}
}

// TTL is the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed token for userID.
func (t *Tokens) Issue(userID int64) (string, error) {
	now := t.now()
	tok, err := jwt.NewBuilder().
		Subject(strconv.FormatInt(userID, 10)).
		Issuer(t.issuer).
		IssuedAt(now).
		Expiration(now.Add(t.ttl)).
		JwtID(uuid.NewString()).
		Build()
	if err != nil {
		return "", fmt.Errorf("build token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.HS256(), t.key))
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return string(signed), nil
}

// Verify checks signature, algorithm, issuer and expiry and returns the user id.
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
		return 0, err
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
		jwt.WithKey(jwa.HS256(), t.key),
		jwt.WithValidate(true),
		jwt.WithIssuer(t.issuer),
		jwt.WithClock(jwt.ClockFunc(t.now)),
		jwt.WithAcceptableSkew(5*time.Second),
		jwt.WithRequiredClaim("exp"),
	)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %w", apperr.ErrUnauthenticated, err)
	}
	sub, ok := tok.Subject()
	if !ok {
		return 0, time.Time{}, fmt.Errorf("%w: token has no subject", apperr.ErrUnauthenticated)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id < 1 {
		return 0, time.Time{}, fmt.Errorf("%w: token subject is not a user id", apperr.ErrUnauthenticated)
	}
	expires, _ := tok.Expiration() // required above
	return id, expires, nil
}
