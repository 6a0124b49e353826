package main

import (
	"log/slog"
	"net"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/logging"
)

// summary is the API's start in one log line: where it listens and what it
// depends on, without credentials.
func summary(cfg config.API, addr net.Addr, tracing bool) []any {
	attrs := []any{
		slog.String("addr", addr.String()),
		slog.String("database", logging.Endpoint(cfg.Database.URL)),
		slog.String("redis", logging.Endpoint(cfg.Redis.URL)),
		slog.String("redis_key_prefix", cfg.Redis.KeyPrefix),
		slog.Bool("cache", cfg.CacheTTL > 0),
		slog.Bool("rate_limits", cfg.Edge.RateLimit.Enabled),
		slog.Bool("tracing", tracing),
	}
	if cfg.DebugAddr != "" {
		attrs = append(attrs, slog.String("debug_addr", cfg.DebugAddr))
	}
	return attrs
}
