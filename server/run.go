package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/cache"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/logging"
	"github.com/ordersvc/orders/internal/metrics"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/internal/outbox"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/telemetry"
)

// run starts the API and serves until ctx is cancelled, then drains in-flight
// requests. Tests call it directly with their own environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.LoadAPI(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// Access-log lines are batched (one write per flush, not per request);
	// every other line goes out at once, after them. Closed last: what is
	// pending at shutdown is written before run returns.
	format := logging.Resolve(stdout, cfg.LogFormat) // before stdout is wrapped
	logs := telemetry.NewLineBuffer(stdout, accessLogBufferBytes, accessLogFlushEvery)
	defer logs.Close() //nolint:errcheck // stdout failing at exit has nowhere to report to
	logger := logging.New(logs, cfg.LogLevel, format)

	switch {
	case len(args) == 1 && args[0] == "migrate":
		return database.Migrate(ctx, cfg.Database.MigrationURL, logger)
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

	pool, err := database.Start(ctx, cfg.Database.URL, cfg.Database.MigrationURL, cfg.Database.MaxConns, cfg.Database.MigrateOnStart, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	hasher, err := auth.NewHasher(cfg.PasswordHash.Workers, cfg.PasswordHash.QueueTimeout)
	if err != nil {
		return err
	}
	// Redis is optional at runtime: Open succeeds while it is down, and every
	// use of it degrades (to PostgreSQL, to in-process rate limits).
	redis, err := cache.Open(cache.Options{
		URL:          cfg.Redis.URL,
		Timeout:      cfg.Redis.Timeout,
		Failures:     cfg.Redis.BreakerFailures,
		ProbeTimeout: cfg.Redis.BreakerProbe,
		Cooldown:     cfg.Redis.BreakerCooldown,
		Logger:       logger,
	})
	if err != nil {
		return err
	}
	defer redis.Close() // after the HTTP server has drained

	debugAddr, err := metrics.ServeDebug(ctx, cfg.DebugAddr, logger)
	if err != nil {
		return fmt.Errorf("listen on DEBUG_ADDR %s: %w", cfg.DebugAddr, err)
	}
	reg := metrics.NewRegistry(pool)
	reg.MustRegister(redis.Collector())
	observed := newHTTPMetrics(reg)
	edge := newEdgeConfig(cfg, redis, observed.rateLimited, logger)
	announcer := outbox.NewAnnouncer(pool, logger)
	defer announcer.Start(ctx)()
	orderOpts := []orders.Option{
		orders.WithIdempotencyKeys(cfg.Orders.IdempotencyKeyTTL, cfg.Orders.IdempotencyKeyRequired),
		orders.WithRequiredIfMatch(cfg.Orders.RequireIfMatch),
		orders.WithEncoder(encodeOrder),
		orders.WithAnnouncer(announcer),
	}
	if cfg.CacheTTL > 0 { // CACHE_TTL=0 turns the order cache off
		store := cache.NewStore(redis, cfg.Redis.KeyPrefix, cache.WithGetObserver(observed.cacheRead))
		orderOpts = append(orderOpts, orders.WithCache(store, cfg.CacheTTL))
	}
	revocations, stopRevocations := followRevocations(ctx, pool, cfg.Database.MigrationURL, logger)
	defer stopRevocations()
	tokens := auth.NewTokens(auth.TokenSettings{
		Keys: keys, Issuer: cfg.Tokens.Issuer, Audience: cfg.Tokens.Audience, TTL: cfg.Tokens.TTL, Revocations: revocations,
	})
	srv := &Server{
		auth: auth.NewService(pool, hasher, tokens, auth.RefreshSettings{
			TTL: cfg.Tokens.RefreshTTL, ReuseGrace: cfg.Tokens.RefreshReuseGrace, Logger: logger,
		}),
		orders: orders.NewService(pool, orderOpts...),
		ready:  newReadiness(pool, cfg.Database.MigrationURL, redis, edge.limits != nil),
		jwks:   jwks,
	}
	reg.MustRegister(srv.ready.gauge())
	handler, err := newHTTPHandler(srv, edge, observed, metrics.Handler(reg), logger, logging.New(logs.Buffered(), cfg.LogLevel, format))
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
	logger.Info("http server listening", slog.String("addr", listener.Addr().String()))
	logger.Info("api running", summary(cfg, listener.Addr(), tracing)...)

	addrs := process.Addrs(process.HTTPAddr, listener.Addr().String(), debugAddr)
	process.AnnounceListening(getenv, logger, addrs)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return process.ServeHTTP(gctx, httpServer, listener, cfg.ShutdownTimeout) })
	// Ready, to the service manager, when /ready would answer 200:
	// PostgreSQL answers and every migration is applied.
	g.Go(func() error {
		process.AnnounceReady(gctx, getenv, logger, srv.ready.ok, "serving", addrs)
		return nil
	})
	<-gctx.Done()
	logger.Info("shutting down", slog.Duration("timeout", cfg.ShutdownTimeout))
	process.AnnounceStopping(getenv, logger)
	if err := g.Wait(); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
