package main

import (
	"log/slog"
	"net"
	"net/http"
	"slices"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/ratelimit"
)

// edgeConfig is what the HTTP edge needs from the configuration: who may call
// from a browser, which proxies to believe about the client's address, and
// the request budgets (nil when rate limiting is off).
type edgeConfig struct {
	corsOrigins     []string
	corsCredentials bool
	trustedProxies  []*net.IPNet
	limits          *rateLimits
}

// newEdgeConfig reads the edge's settings; rejected counts the requests the
// rate limits refuse, by bucket.
func newEdgeConfig(cfg config.API, redis *cache.Redis, rejected *prometheus.CounterVec, logger *slog.Logger) edgeConfig {
	edge := edgeConfig{corsOrigins: cfg.Edge.CORSAllowedOrigins, corsCredentials: cfg.Edge.CORSAllowCredentials, trustedProxies: cfg.Edge.TrustedProxies}
	if cfg.Edge.RateLimit.Enabled {
		edge.limits = &rateLimits{
			limiter:    ratelimit.New(redis, cfg.Redis.KeyPrefix, logger),
			anonymous:  ratelimit.Rate(cfg.Edge.RateLimit.Anonymous),
			auth:       ratelimit.Rate(cfg.Edge.RateLimit.Auth),
			loginEmail: ratelimit.Rate(cfg.Edge.RateLimit.LoginEmail),
			user:       ratelimit.Rate(cfg.Edge.RateLimit.User),
			rejected:   rejected,
		}
	}
	return edge
}

// clientIP decides what c.RealIP() returns. X-Forwarded-For is believed only
// when the connection comes from a configured proxy, and then only up to the
// first address that is not one: otherwise any client could pick its own
// rate-limit budget by sending the header. Echo trusts loopback and private
// ranges by default; that is switched off.
func clientIP(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// securityHeaders sets the headers every answer carries, errors included.
// API answers (JSON, often personal or a credential) are never stored by a
// cache and never rendered as a document; the docs keep their own caching
// and need scripts, so they get neither.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		for _, f := range everyAnswerHeaders {
			f.setOn(h)
		}
		if !isDocsPath(c.Request().URL.Path) {
			for _, f := range apiAnswerHeaders {
				f.setOn(h)
			}
		}
		return next(c)
	}
}

var (
	everyAnswerHeaders = []fixedHeader{
		newFixedHeader(echo.HeaderXContentTypeOptions, "nosniff"),
		newFixedHeader(echo.HeaderXFrameOptions, "DENY"),
		newFixedHeader(echo.HeaderReferrerPolicy, "no-referrer"),
	}
	apiAnswerHeaders = []fixedHeader{
		newFixedHeader(echo.HeaderCacheControl, "no-store"),
		newFixedHeader(echo.HeaderContentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'"),
	}
)

// corsRequestHeaders are the request headers a page may send.
var corsRequestHeaders = []string{
	echo.HeaderAuthorization, echo.HeaderContentType, echo.HeaderXRequestID,
	headerIdempotencyKey, headerIfMatch, headerIfNoneMatch,
}

// cors answers preflights itself, on any path, before the request validator
// (which has no OPTIONS operation and would answer 405) and before the rate
// limiter (so that a 429 still carries the headers a browser needs to let the
// page read it). Echo answers a preflight 204; the contract, like the
// original service, says 200, so the status is changed just before the
// header is written. An origin not on the list gets no
// Access-Control-Allow-Origin, which is what makes the browser refuse.
func cors(cfg edgeConfig) echo.MiddlewareFunc {
	anyOrigin := slices.Contains(cfg.corsOrigins, "*")
	allowed := func(origin string) (bool, error) {
		return anyOrigin || slices.Contains(cfg.corsOrigins, origin), nil
	}
	handle := middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc:  allowed,
		AllowMethods:     []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodOptions},
		AllowHeaders:     corsRequestHeaders,
		AllowCredentials: cfg.corsCredentials, // config refuses "*" together with credentials
		ExposeHeaders: []string{
			"Link", echo.HeaderRetryAfter, headerRateLimitLimit, headerRateLimitRemaining, headerRateLimitReset,
			echo.HeaderWWWAuthenticate, echo.HeaderXRequestID,
			headerETag, echo.HeaderLocation, headerIdempotentReplayed,
		},
		MaxAge: 600,
	})
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		h := handle(next)
		return func(c echo.Context) error {
			if c.Request().Method == http.MethodOptions {
				res := c.Response()
				res.Before(func() {
					if res.Status == http.StatusNoContent {
						res.Status = http.StatusOK
					}
				})
			}
			return h(c)
		}
	}
}
