package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
)

// RefreshSettings shape the refresh tokens a Service hands out.
type RefreshSettings struct {
	// TTL is the lifetime of a refresh token; each refresh hands out a new
	// one with the full lifetime.
	TTL time.Duration
	// ReuseGrace, when positive, lets a client that lost the answer to a
	// refresh present the same refresh token again within it, as long as
	// the token that answer carried was never used. Zero: presenting a
	// rotated token always revokes its family.
	ReuseGrace time.Duration
	// Logger receives reuse detections (never a token). Nil: discarded.
	Logger *slog.Logger
}

// Grant is what a successful POST /token/ hands out.
type Grant struct {
	AccessToken  string
	RefreshToken string
}

// refreshTokenBytes is the randomness of a refresh token: 256 bits.
const refreshTokenBytes = 32

// refreshTokenLen is the length of a refresh token as handed out: the
// random bytes in unpadded base64url.
var refreshTokenLen = base64.RawURLEncoding.EncodedLen(refreshTokenBytes)

// newRefreshToken returns a fresh opaque refresh token and the hash that is
// all the database keeps of it.
func newRefreshToken() (token string, hash []byte) {
	b := make([]byte, refreshTokenBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, refreshTokenHash(token)
}

// refreshTokenHash is the key of a refresh token in the database. A fast
// hash suffices: the token is 256 random bits, not a password.
func refreshTokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// isRefreshTokenShape reports whether token could be one newRefreshToken
// made; anything else is not looked up.
func isRefreshTokenShape(token string) bool {
	if len(token) != refreshTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

// invalidGrant is the refusal of a refresh token (RFC 6749 invalid_grant).
// The client learns no more than that: not whether the token was unknown,
// expired, revoked or reused.
func invalidGrant(why string) error {
	return fmt.Errorf("%w: refresh token %s", apperr.ErrInvalidGrant, why)
}

// Refresh exchanges a refresh token for a new access token and a new
// refresh token, and retires the one presented. A token presented again
// after its rotation revokes its whole family, refresh tokens and the
// access tokens issued from them, unless RefreshSettings.ReuseGrace
// covers it.
func (s *Service) Refresh(ctx context.Context, presented string) (Grant, error) {
	if presented == "" {
		return Grant{}, fmt.Errorf("refresh: %w", apperr.Invalid("body.refresh_token", "is required with grant_type refresh_token"))
	}
	if !isRefreshTokenShape(presented) {
		return Grant{}, fmt.Errorf("refresh: %w", invalidGrant("is malformed"))
	}
	hash := refreshTokenHash(presented)
	now := s.now()
	var (
		grant   Grant
		refusal error
		revoked []revokedToken
		reused  db.LockRefreshFamilyOfRow
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.queries.WithTx(tx)
		family, err := q.LockRefreshFamilyOf(ctx, hash)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			refusal = invalidGrant("is unknown")
			return nil
		case err != nil:
			return err
		case family.RevokedAt != nil:
			refusal = invalidGrant("belongs to a revoked family")
			return nil
		}
		tok, err := q.GetRefreshToken(ctx, hash)
		if err != nil {
			return err
		}
		switch {
		case tok.RevokedAt != nil:
			refusal = invalidGrant("is revoked")
			return nil
		case !now.Before(tok.ExpiresAt):
			refusal = invalidGrant("has expired")
			return nil
		case tok.RotatedAt != nil:
			lost, err := s.lostAnswer(ctx, q, tok, now)
			if err != nil {
				return err
			}
			if lost {
				// Retire the successor nobody received, and its access token.
				rows, err := q.RevokeRefreshToken(ctx, db.RevokeRefreshTokenParams{
					TokenHash: tok.ReplacedBy, Now: now, LiveAfter: now.Add(-clockSkew),
				})
				if err != nil {
					return err
				}
				revoked = append(revoked, fromRows(rows)...)
				break
			}
			rows, err := q.RevokeRefreshFamily(ctx, db.RevokeRefreshFamilyParams{
				FamilyID: family.ID, Now: now, LiveAfter: now.Add(-clockSkew),
			})
			if err != nil {
				return err
			}
			revoked = append(revoked, fromRows(rows)...)
			refusal, reused = invalidGrant("was already used; its family is revoked"), family
			return nil // commit the revocation
		}
		access, err := s.tokens.Issue(family.UserID)
		if err != nil {
			return err
		}
		next, nextHash := newRefreshToken()
		if err := q.CreateRefreshToken(ctx, db.CreateRefreshTokenParams{
			TokenHash: nextHash, FamilyID: family.ID,
			AccessJti: access.ID, AccessExpiresAt: access.Expires, ExpiresAt: now.Add(s.refresh.TTL),
		}); err != nil {
			return err
		}
		if err := q.RotateRefreshToken(ctx, db.RotateRefreshTokenParams{TokenHash: hash, ReplacedBy: nextHash, Now: now}); err != nil {
			return err
		}
		grant = Grant{AccessToken: access.Token, RefreshToken: next}
		return nil
	})
	if err != nil {
		return Grant{}, fmt.Errorf("refresh: %w", err)
	}
	s.tokens.noteRevoked(revoked)
	if reused.UserID != 0 {
		s.logger.Warn("refresh token reused: its family is revoked",
			slog.String("family", reused.ID.String()), slog.Int64("user_id", reused.UserID), slog.Int("access_tokens_revoked", len(revoked)))
	}
	if refusal != nil {
		return Grant{}, fmt.Errorf("refresh: %w", refusal)
	}
	return grant, nil
}

// lostAnswer reports whether a rotated token presented again is a client
// retrying a refresh whose answer it lost: within ReuseGrace of the
// rotation, and the successor that answer carried never used.
func (s *Service) lostAnswer(ctx context.Context, q *db.Queries, tok db.GetRefreshTokenRow, now time.Time) (bool, error) {
	if s.refresh.ReuseGrace <= 0 || now.Sub(*tok.RotatedAt) > s.refresh.ReuseGrace {
		return false, nil
	}
	successor, err := q.GetRefreshToken(ctx, tok.ReplacedBy)
	if err != nil {
		return false, fmt.Errorf("successor of a rotated token: %w", err)
	}
	return successor.RotatedAt == nil && successor.RevokedAt == nil, nil
}

// Revoke is RFC 7009 revocation: a refresh token revokes its family (its
// refresh tokens and the access tokens issued from them), an access token
// itself until it expires. The two kinds cannot be mistaken for each other
// (a JWT has dots, a refresh token none), so no hint is needed. A token
// that is unknown, invalid, expired or already revoked is not an error:
// there is nothing left to revoke.
func (s *Service) Revoke(ctx context.Context, token string) error {
	if strings.Contains(token, ".") {
		return s.revokeAccessToken(ctx, token)
	}
	return s.revokeRefreshToken(ctx, token)
}

func (s *Service) revokeAccessToken(ctx context.Context, token string) error {
	tok, err := s.tokens.Inspect(token)
	if err != nil {
		return nil //nolint:nilerr // not a live token of ours: nothing to revoke
	}
	if err := s.queries.RevokeAccessToken(ctx, db.RevokeAccessTokenParams{Jti: tok.ID, ExpiresAt: tok.Expires}); err != nil {
		return fmt.Errorf("revoke access token: %w", err)
	}
	s.tokens.noteRevoked([]revokedToken{{tok.ID, tok.Expires}})
	return nil
}

func (s *Service) revokeRefreshToken(ctx context.Context, token string) error {
	if !isRefreshTokenShape(token) {
		return nil
	}
	hash := refreshTokenHash(token)
	now := s.now()
	var revoked []revokedToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.queries.WithTx(tx)
		family, err := q.LockRefreshFamilyOf(ctx, hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		rows, err := q.RevokeRefreshFamily(ctx, db.RevokeRefreshFamilyParams{
			FamilyID: family.ID, Now: now, LiveAfter: now.Add(-clockSkew),
		})
		revoked = fromRows(rows)
		return err
	})
	if err != nil {
		return fmt.Errorf("revoke refresh token: %w", err)
	}
	s.tokens.noteRevoked(revoked)
	return nil
}

// revokedToken is an access token revoked by a transaction just committed.
type revokedToken struct {
	jti     uuid.UUID
	expires time.Time
}

func fromRows(rows []db.RevokedToken) []revokedToken {
	out := make([]revokedToken, len(rows))
	for i, r := range rows {
		out[i] = revokedToken{r.Jti, r.ExpiresAt}
	}
	return out
}
