package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/metrics"
	"github.com/ordersvc/orders/internal/ratelimit"
)

// GetHealth is the liveness probe: the process answers.
func (s *Server) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	return api.GetHealth200JSONResponse{Status: "ok"}, nil
}

// GetReady is the readiness probe: PostgreSQL answers and every migration is
// applied. Redis is reported but optional: without it the instance still
// serves every request, so it stays ready, "degraded".
func (s *Server) GetReady(ctx context.Context, _ api.GetReadyRequestObject) (api.GetReadyResponseObject, error) {
	checks, ok := s.ready.check(ctx)
	if ok {
		optional, degraded := s.ready.optional(ctx)
		status := "ok"
		if degraded {
			status = "degraded"
		}
		return api.GetReady200JSONResponse{Status: status, Checks: checks, Optional: &optional}, nil
	}
	detail := "a dependency is not ready; see checks"
	return api.GetReady503ApplicationProblemPlusJSONResponse{
		Type:   "about:blank",
		Title:  "Service Unavailable",
		Status: 503,
		Detail: &detail,
		Checks: &checks,
	}, nil
}

type readiness struct {
	pool *pgxpool.Pool
	// migrationURL is where dbmate reads the applied migrations: a direct
	// connection (its driver's statements need a session).
	migrationURL string
	// migrated latches: once every migration is applied it stays applied, so
	// the probe stops asking dbmate (which opens its own connection).
	migrated    atomic.Bool
	redis       *cache.Redis
	rateLimited bool
}

func newReadiness(pool *pgxpool.Pool, migrationURL string, redis *cache.Redis, rateLimited bool) *readiness {
	return &readiness{pool: pool, migrationURL: migrationURL, redis: redis, rateLimited: rateLimited}
}

// optional reports the dependencies the service can do without. The PING
// goes through the breaker: while it is open, the answer is immediate.
func (r *readiness) optional(ctx context.Context) (map[string]string, bool) {
	redisUp := r.redis.Ping(ctx) == nil
	out := map[string]string{"redis": "ok", "rate_limits": "disabled"}
	if !redisUp {
		out["redis"] = "unavailable"
	}
	switch {
	case !r.rateLimited:
	case redisUp:
		out["rate_limits"] = ratelimit.ModeRedis
	default:
		out["rate_limits"] = ratelimit.ModeInProcess
	}
	return out, !redisUp
}

// gauge is orders_ready: 1 when /ready would answer 200, checked at each
// scrape, so that an alert can see an instance that answers but cannot
// serve (PostgreSQL unreachable or migrations missing).
func (r *readiness) gauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: metrics.Namespace, Name: "ready",
		Help: "1 when the readiness probe (/ready) passes: PostgreSQL answers and every migration is applied.",
	}, func() float64 {
		if r.ok(context.Background()) {
			return 1
		}
		return 0
	})
}

// ok is check's verdict alone.
func (r *readiness) ok(ctx context.Context) bool {
	_, ok := r.check(ctx)
	return ok
}

func (r *readiness) check(ctx context.Context) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	checks := map[string]string{"postgres": "ok", "migrations": "ok"}
	ok := true
	if err := r.pool.Ping(ctx); err != nil {
		checks["postgres"], ok = "unreachable", false
	}
	if !r.migrated.Load() {
		switch pending, err := database.Pending(r.migrationURL); {
		case err != nil:
			checks["migrations"], ok = "unknown", false
		case pending > 0:
			checks["migrations"], ok = fmt.Sprintf("%d pending", pending), false
		default:
			r.migrated.Store(true)
		}
	}
	return checks, ok
}
