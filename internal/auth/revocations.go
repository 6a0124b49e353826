package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
)

// Revocations are the access tokens revoked before they expire, by jti. Every
// request checks them, so each API instance holds them in memory rather
// than asking the database: loaded at start, kept current by PostgreSQL
// notifications (the revoked_tokens trigger), and reloaded periodically in
// case a notification was missed. Until the first load succeeds no token is
// accepted: answering without knowing the revocations could let a revoked
// token through.
type Revocations struct {
	mu     sync.RWMutex
	jtis   map[uuid.UUID]time.Time // the expiry of each revoked token
	loaded bool
	now    func() time.Time
}

// NewRevocations returns an empty set that accepts no token until loaded
// (Follow, or Load).
func NewRevocations() *Revocations {
	return &Revocations{jtis: map[uuid.UUID]time.Time{}, now: time.Now}
}

// check returns nil when the token jti may still be used.
func (r *Revocations) check(jti uuid.UUID) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if !r.loaded {
		return fmt.Errorf("%w: revoked tokens are not loaded yet", apperr.ErrUnavailable)
	}
	if _, revoked := r.jtis[jti]; revoked {
		return fmt.Errorf("%w: token revoked", apperr.ErrUnauthenticated)
	}
	return nil
}

// add records one revocation, as soon as the instance that made it has
// committed it (its own notification follows).
func (r *Revocations) add(jti uuid.UUID, expires time.Time) {
	r.mu.Lock()
	r.jtis[jti] = expires
	r.mu.Unlock()
}

// Load replaces the set with the revocations in the database that still
// matter, dropping those of tokens expired since.
func (r *Revocations) Load(ctx context.Context, q *db.Queries) error {
	rows, err := q.ListRevokedTokens(ctx, r.now().Add(-clockSkew))
	if err != nil {
		return fmt.Errorf("load revoked tokens: %w", err)
	}
	jtis := make(map[uuid.UUID]time.Time, len(rows))
	for _, row := range rows {
		jtis[row.Jti] = row.ExpiresAt
	}
	r.mu.Lock()
	r.jtis, r.loaded = jtis, true
	r.mu.Unlock()
	return nil
}

// Len is the number of revocations held.
func (r *Revocations) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.jtis)
}

const (
	// resyncInterval is how often the whole set is reloaded while
	// notifications flow: a missed one lives at most this long. It also
	// finds a connection that died without an error.
	resyncInterval = 10 * time.Second
	// purgeInterval is how often expired revocations and refresh tokens
	// are deleted from the database.
	purgeInterval = time.Hour
	// maxReconnectDelay bounds the wait between attempts to reconnect.
	maxReconnectDelay = 5 * time.Second
	// revocationFeedName names the feed's connection in pg_stat_activity.
	revocationFeedName = "orders-api revocation feed"
)

// Follow keeps r current until ctx ends, on a connection of its own to
// databaseURL (LISTEN needs a session; it cannot go through a transaction
// pooler). Every (re)connection starts with a full load, so revocations
// made while it was away are not missed. It also purges what has expired.
func (r *Revocations) Follow(ctx context.Context, databaseURL string, logger *slog.Logger) {
	r.mu.RLock()
	lost := !r.loaded // the caller has said so when its first load failed
	r.mu.RUnlock()
	var (
		delay     = 100 * time.Millisecond
		lastPurge time.Time
	)
	for ctx.Err() == nil {
		err := r.follow(ctx, databaseURL, func(q *db.Queries) {
			delay = 100 * time.Millisecond
			if lost {
				lost = false
				logger.Warn("revocation feed restored")
			}
			if time.Since(lastPurge) >= purgeInterval {
				lastPurge = time.Now()
				r.purge(ctx, q, logger)
			}
		})
		if ctx.Err() != nil {
			return
		}
		if !lost {
			lost = true
			logger.Warn("revocation feed lost; tokens revoked elsewhere are seen once it is back", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// follow listens on one connection until it fails or ctx ends. synced runs
// after every full load.
func (r *Revocations) follow(ctx context.Context, databaseURL string, synced func(*db.Queries)) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	cfg.RuntimeParams["application_name"] = revocationFeedName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection is abandoned either way
	q := db.New(conn)
	// LISTEN before loading: a revocation committed in between is then
	// both in the load and in a notification, never in neither.
	if err := q.ListenForRevocations(ctx); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := r.Load(ctx, q); err != nil {
		return err
	}
	synced(q)
	for {
		wait, cancel := context.WithTimeout(ctx, resyncInterval)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil:
			if !r.apply(n.Payload) {
				if err := r.Load(ctx, q); err != nil {
					return err
				}
			}
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			if err := r.Load(ctx, q); err != nil {
				return err
			}
			synced(q)
		default:
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

// apply reads a notification, "<jti> <expiry in Unix seconds>", and
// reports whether it could.
func (r *Revocations) apply(payload string) bool {
	id, exp, ok := strings.Cut(payload, " ")
	if !ok {
		return false
	}
	jti, err := uuid.Parse(id)
	if err != nil {
		return false
	}
	seconds, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return false
	}
	r.add(jti, time.Unix(seconds, 0))
	return true
}

// purge deletes revocations of expired tokens and refresh-token families
// that can no longer be used. Any instance may do it; doing it twice is
// harmless.
func (r *Revocations) purge(ctx context.Context, q *db.Queries, logger *slog.Logger) {
	cutoff := r.now().Add(-clockSkew)
	revocations, err := q.PurgeRevokedTokens(ctx, cutoff)
	if err != nil {
		logger.Debug("purge revoked tokens", slog.Any("error", err))
		return
	}
	families, err := q.PurgeRefreshFamilies(ctx, cutoff)
	if err != nil {
		logger.Debug("purge refresh tokens", slog.Any("error", err))
		return
	}
	if revocations > 0 || families > 0 {
		logger.Debug("purged expired tokens", slog.Int64("revocations", revocations), slog.Int64("refresh_families", families))
	}
}
