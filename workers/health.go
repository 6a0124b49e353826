package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
)

// statusServer answers operators and orchestrators:
//
//	GET /health  200 while the process runs
//	GET /ready   200 once the router runs and PostgreSQL answers, else 503
//	GET /outbox  the unforwarded backlog and the age of its oldest event
//	GET /metrics Prometheus
type statusServer struct {
	pool    *pgxpool.Pool
	queries *db.Queries
	metrics http.Handler
	running atomic.Bool
}

func newStatusServer(pool *pgxpool.Pool, metrics http.Handler) *statusServer {
	return &statusServer{pool: pool, queries: db.New(pool), metrics: metrics}
}

func (s *statusServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /ready", s.ready)
	mux.HandleFunc("GET /outbox", s.outbox)
	mux.Handle("GET /metrics", s.metrics)
	return mux
}

func (s *statusServer) ready(w http.ResponseWriter, r *http.Request) {
	checks, ok := s.check(r.Context())
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"status": http.StatusText(status), "checks": checks})
}

// check is the readiness check behind /ready and READY=1: the router runs
// (its queues and bindings are declared) and PostgreSQL answers.
func (s *statusServer) check(ctx context.Context) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "router": "ok"}
	ok := true
	if err := s.pool.Ping(ctx); err != nil {
		checks["postgres"], ok = "unreachable", false
	}
	if !s.running.Load() {
		checks["router"], ok = "starting", false
	}
	return checks, ok
}

// ok is check's verdict alone.
func (s *statusServer) ok(ctx context.Context) bool {
	_, ok := s.check(ctx)
	return ok
}

// OutboxStatus is the body of GET /outbox.
type OutboxStatus struct {
	Pending          int64   `json:"pending"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
}

func (s *statusServer) outbox(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	b, err := s.queries.OutboxBacklog(ctx)
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, OutboxStatus{Pending: b.Pending, OldestAgeSeconds: b.OldestAgeSeconds})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// purgeForwarded deletes forwarded outbox rows older than retention, and
// expired idempotency keys, every interval, until ctx ends.
func purgeForwarded(ctx context.Context, queries *db.Queries, retention, interval time.Duration, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		purgeOnce(ctx, queries, retention, logger)
		purgeExpiredKeys(ctx, queries, logger)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func purgeOnce(ctx context.Context, queries *db.Queries, retention time.Duration, logger *slog.Logger) {
	n, err := queries.DeleteForwardedOutbox(ctx, time.Now().Add(-retention))
	switch {
	case err != nil && ctx.Err() == nil:
		logger.Warn("outbox retention", slog.Any("error", err))
	case n > 0:
		logger.Info("outbox retention", slog.Int64("deleted", n))
	}
}

// keyPurgeBatch bounds one DELETE of expired idempotency keys, so that the
// retention never holds many row locks or writes a long transaction while
// the API takes keys.
const keyPurgeBatch = 1000

// purgeExpiredKeys deletes expired idempotency keys, keyPurgeBatch at a time,
// until none is left or ctx ends.
func purgeExpiredKeys(ctx context.Context, queries *db.Queries, logger *slog.Logger) {
	var total int64
	for ctx.Err() == nil {
		n, err := queries.DeleteExpiredIdempotencyKeys(ctx, db.DeleteExpiredIdempotencyKeysParams{Now: time.Now(), BatchSize: keyPurgeBatch})
		if err != nil {
			if ctx.Err() == nil {
				logger.Warn("idempotency key retention", slog.Any("error", err))
			}
			break
		}
		total += n
		if n < keyPurgeBatch {
			break
		}
	}
	if total > 0 {
		logger.Info("idempotency key retention", slog.Int64("deleted", total))
	}
}
