package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/logging"
	"github.com/ordersvc/orders/internal/metrics"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/internal/telemetry"
)

// run starts the API and serves until ctx is cancelled, then drains in-flight
// requests. Tests call it directly with their own environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := logging.New(stdout, cfg.LogLevel, cfg.LogFormat)

	switch {
	case len(args) == 1 && args[0] == "migrate":
		return database.Migrate(ctx, cfg.DatabaseURL, logger)
	case len(args) > 0:
		return fmt.Errorf("unknown arguments %q; usage: server [migrate]", args)
	}
	if err := cfg.CheckJWTSecret(); err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	keys, err := tokenKeys(cfg, logger)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	jwks, err := publicKeySet(keys)
	if err != nil {
		return err
	}
	shutdownTracing, tracing, err := telemetry.Setup(ctx, "orders-api", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit

	pool, err := database.Start(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns, cfg.MigrateOnStart, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	hasher, err := auth.NewHasher(cfg.PasswordHashWorkers, cfg.PasswordHashQueueTimeout)
	if err != nil {
		return err
	}
	// Redis is optional at runtime: Open succeeds while it is down, and every
	// use of it degrades (to PostgreSQL, to in-process rate limits).
	redis, err := cache.Open(cache.Options{
		URL:          cfg.RedisURL,
		Timeout:      cfg.RedisTimeout,
		Failures:     cfg.RedisBreakerFailures,
		ProbeTimeout: cfg.RedisBreakerProbe,
		Cooldown:     cfg.RedisBreakerCooldown,
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	defer redis.Close() // after the HTTP server has drained

	if err := metrics.ServeDebug(ctx, cfg.DebugAddr, logger); err != nil {
		return fmt.Errorf("listen on DEBUG_ADDR %s: %w", cfg.DebugAddr, err)
	}
	reg := metrics.NewRegistry(pool)
	reg.MustRegister(redis.Collector())
	observed := newHTTPMetrics(reg)
	edge := newEdgeConfig(cfg, redis, logger)
	if edge.limits != nil {
		edge.limits.rejected = observed.rateLimited
	}
	orderOpts := []orders.Option{
		orders.WithIdempotencyKeys(cfg.IdempotencyKeyTTL, cfg.IdempotencyKeyRequired),
		orders.WithRequiredIfMatch(cfg.RequireIfMatch),
	}
	if cfg.CacheTTL > 0 { // CACHE_TTL=0 turns the order cache off
		store := cache.NewStore(redis, cfg.RedisKeyPrefix)
		store.OnGet = observed.cacheRead
		orderOpts = append(orderOpts, orders.WithCache(store, cfg.CacheTTL))
	}
	revocations, stopRevocations := followRevocations(ctx, pool, cfg.DatabaseURL, logger)
	defer stopRevocations()
	tokens := auth.NewTokens(auth.TokenSettings{
		Keys: keys, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, TTL: cfg.JWTTTL, Revocations: revocations,
	})
	srv := &Server{
		auth: auth.NewService(pool, hasher, tokens, auth.RefreshSettings{
			TTL: cfg.RefreshTokenTTL, ReuseGrace: cfg.RefreshReuseGrace, Logger: logger,
		}),
		orders: orders.NewService(pool, orderOpts...),
		ready:  newReadiness(pool, cfg.DatabaseURL, redis, edge.limits != nil),
		jwks:   jwks,
	}
	reg.MustRegister(srv.ready.gauge())
	handler, err := newHTTPHandler(srv, edge, observed, metrics.Handler(reg), logger)
	if err != nil {
		return err
	}
	if tracing { // its per-request cost is only worth paying when spans go somewhere
		handler = traced(handler)
	}

	listener, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(listener) }()
	logger.Info("http server listening", slog.String("addr", listener.Addr().String()))
	logger.Info("api running", summary(cfg, listener.Addr(), tracing)...)

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	logger.Info("stopped")
	return nil
}
