package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/auth"
)

// initialRevocationLoad bounds the load of revoked tokens at start. When it
// fails (the database is down or not migrated yet), the server starts
// anyway and refuses tokens with 503 until the revocation feed has loaded
// them.
const initialRevocationLoad = 5 * time.Second

// followRevocations loads the revoked tokens and keeps them current in the
// background until stop is called (or ctx ends); stop waits for the
// follower to end. The feed LISTENs on a session of its own to sessionURL
// (MIGRATION_DATABASE_URL: a transaction pooler keeps no session).
func followRevocations(ctx context.Context, pool *pgxpool.Pool, sessionURL string, logger *slog.Logger) (revocations *auth.Revocations, stop func()) {
	revocations = auth.NewRevocations()
	loadCtx, cancel := context.WithTimeout(ctx, initialRevocationLoad)
	if err := revocations.Load(loadCtx, db.New(pool)); err != nil {
		logger.Warn("revoked tokens not loaded; tokens are refused (503) until they are", slog.Any("error", err))
	} else {
		logger.Debug("revoked tokens loaded", slog.Int("count", revocations.Len()))
	}
	cancel()
	followCtx, cancelFollow := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		revocations.Follow(followCtx, sessionURL, logger)
	}()
	return revocations, func() {
		cancelFollow()
		<-done
	}
}
