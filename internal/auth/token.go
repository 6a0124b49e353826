package auth

import (
	"fmt"
	"strconv"
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
}

// NewTokens returns a Tokens signing with key.
func NewTokens(key []byte, issuer string, ttl time.Duration) *Tokens {
	return &Tokens{key: key, issuer: issuer, ttl: ttl, now: time.Now}
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
	tok, err := jwt.ParseString(raw,
		jwt.WithKey(jwa.HS256(), t.key),
		jwt.WithValidate(true),
		jwt.WithIssuer(t.issuer),
		jwt.WithClock(jwt.ClockFunc(t.now)),
		jwt.WithAcceptableSkew(5*time.Second),
		jwt.WithRequiredClaim("exp"),
	)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", apperr.ErrUnauthenticated, err)
	}
	sub, ok := tok.Subject()
	if !ok {
		return 0, fmt.Errorf("%w: token has no subject", apperr.ErrUnauthenticated)
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("%w: token subject is not a user id", apperr.ErrUnauthenticated)
	}
	return id, nil
}
