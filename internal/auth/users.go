// Package auth registers users, checks their passwords and issues the bearer
// tokens that authenticate every other request.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
)

// User is a registered user.
type User struct {
	ID    int64
	Email string
}

// Service registers and authenticates users, and hands out, refreshes and
// revokes their tokens.
type Service struct {
	pool    *pgxpool.Pool
	queries *db.Queries
	hasher  *Hasher
	tokens  *Tokens
	refresh RefreshSettings
	logger  *slog.Logger
	now     func() time.Time
}

// NewService returns a Service.
func NewService(pool *pgxpool.Pool, hasher *Hasher, tokens *Tokens, refresh RefreshSettings) *Service {
	logger := refresh.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{pool: pool, queries: db.New(pool), hasher: hasher, tokens: tokens, refresh: refresh, logger: logger, now: time.Now}
}

// Register creates a user. The email is stored normalised (see
// normalizeEmail); one already registered in any letter case fails with
// apperr.ErrAlreadyExists.
func (s *Service) Register(ctx context.Context, email, password string) (User, error) {
	email, err := normalizeEmail("body.email", email)
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	if err := checkAddress("body.email", email); err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	row, err := s.queries.CreateUser(ctx, db.CreateUserParams{Email: email, PasswordHash: hash})
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, fmt.Errorf("register: email %w", apperr.ErrAlreadyExists)
	}
	if err != nil {
		return User{}, fmt.Errorf("register: %w", err)
	}
	return User{ID: row.ID, Email: row.Email}, nil
}

// Login checks the credentials and returns a bearer token and the first
// refresh token of a new family. The email is normalised as Register
// normalises it. An unknown email and a wrong password fail the same way
// and take about the same time.
func (s *Service) Login(ctx context.Context, email, password string) (Grant, error) {
	switch {
	case email == "" && password == "":
		return Grant{}, fmt.Errorf("login: %w", &apperr.ValidationError{Fields: []apperr.FieldError{
			{Field: "body.username", Message: "is required with grant_type password"},
			{Field: "body.password", Message: "is required with grant_type password"},
		}})
	case email == "":
		return Grant{}, fmt.Errorf("login: %w", apperr.Invalid("body.username", "is required with grant_type password"))
	case password == "":
		return Grant{}, fmt.Errorf("login: %w", apperr.Invalid("body.password", "is required with grant_type password"))
	}
	// The username field of POST /token/. Refusing what no registered email
	// can contain (also the NUL and invalid UTF-8 that PostgreSQL would
	// fail on) reveals nothing about which emails are registered.
	email, err := normalizeEmail("body.username", email)
	if err != nil {
		return Grant{}, fmt.Errorf("login: %w", err)
	}
	row, err := s.queries.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if err := s.hasher.VerifyNothing(ctx, password); err != nil {
			return Grant{}, fmt.Errorf("login: %w", err)
		}
		return Grant{}, fmt.Errorf("login: %w", apperr.ErrUnauthenticated)
	case err != nil:
		return Grant{}, fmt.Errorf("login: %w", err)
	}
	ok, err := s.hasher.Verify(ctx, password, row.PasswordHash)
	if err != nil {
		return Grant{}, fmt.Errorf("login: %w", err)
	}
	if !ok {
		return Grant{}, fmt.Errorf("login: %w", apperr.ErrUnauthenticated)
	}
	grant, err := s.startFamily(ctx, row.ID)
	if err != nil {
		return Grant{}, fmt.Errorf("login: %w", err)
	}
	return grant, nil
}

// startFamily issues an access token and the first refresh token of a new
// family for userID.
func (s *Service) startFamily(ctx context.Context, userID int64) (Grant, error) {
	access, err := s.tokens.Issue(userID)
	if err != nil {
		return Grant{}, err
	}
	refresh, hash := newRefreshToken()
	err = s.queries.StartRefreshFamily(ctx, db.StartRefreshFamilyParams{
		FamilyID: uuid.New(), UserID: userID, TokenHash: hash,
		AccessJti: access.ID, AccessExpiresAt: access.Expires, ExpiresAt: s.now().Add(s.refresh.TTL),
	})
	if err != nil {
		return Grant{}, fmt.Errorf("store refresh token: %w", err)
	}
	return Grant{AccessToken: access.Token, RefreshToken: refresh}, nil
}

// Authenticate returns the user id a bearer token was issued to.
func (s *Service) Authenticate(token string) (int64, error) {
	return s.tokens.Verify(token)
}

// TokenTTLSeconds is the lifetime of the tokens Login returns.
func (s *Service) TokenTTLSeconds() int {
	return int(s.tokens.TTL().Seconds())
}
