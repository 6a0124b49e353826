// Package auth registers users, checks their passwords and issues the bearer
// tokens that authenticate every other request.
package auth

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
)

// User is a registered user.
type User struct {
	ID    int64
	Email string
}

// Service registers and authenticates users.
type Service struct {
	queries *db.Queries
	hasher  *Hasher
	tokens  *Tokens
}

// NewService returns a Service.
func NewService(queries *db.Queries, hasher *Hasher, tokens *Tokens) *Service {
	return &Service{queries: queries, hasher: hasher, tokens: tokens}
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

// Login checks the credentials and returns a bearer token. The email is
// normalised as Register normalises it. An unknown email and a wrong
// password fail the same way and take about the same time.
func (s *Service) Login(ctx context.Context, email, password string) (string, error) {
	// The username field of POST /token/. Refusing what no registered email
	// can contain (also the NUL and invalid UTF-8 that PostgreSQL would
	// fail on) reveals nothing about which emails are registered.
	email, err := normalizeEmail("body.username", email)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	row, err := s.queries.GetUserByEmail(ctx, email)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if err := s.hasher.VerifyNothing(ctx, password); err != nil {
			return "", fmt.Errorf("login: %w", err)
		}
		return "", fmt.Errorf("login: %w", apperr.ErrUnauthenticated)
	case err != nil:
		return "", fmt.Errorf("login: %w", err)
	}
	ok, err := s.hasher.Verify(ctx, password, row.PasswordHash)
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if !ok {
		return "", fmt.Errorf("login: %w", apperr.ErrUnauthenticated)
	}
	return s.tokens.Issue(row.ID)
}

// Authenticate returns the user id a bearer token was issued to.
func (s *Service) Authenticate(token string) (int64, error) {
	return s.tokens.Verify(token)
}

// TokenTTLSeconds is the lifetime of the tokens Login returns.
func (s *Service) TokenTTLSeconds() int {
	return int(s.tokens.TTL().Seconds())
}
