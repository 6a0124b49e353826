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

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/metrics"
	"github.com/ordersvc/orders/internal/telemetry"
)

// run starts the forwarders, the handlers and the status endpoint, and
// drains them when ctx ends: in-flight handlers finish (up to
// HANDLER_TIMEOUT) and anything unfinished is left unacked for redelivery.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := telemetry.NewLogger(stdout, cfg.LogLevel)
	topo := messaging.Topology{Namespace: cfg.AMQPNamespace, URL: cfg.AMQPURL, QueueType: cfg.AMQPQueueType}

	if len(args) > 0 {
		return runCommand(ctx, args, topo, stdout)
	}

	pool, err := database.Start(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns, cfg.MigrateOnStart, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	shutdownTracing, _, err := telemetry.Setup(ctx, "orders-workers", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit

	if err := metrics.ServeDebug(ctx, cfg.DebugAddr, logger); err != nil {
		return fmt.Errorf("listen on DEBUG_ADDR %s: %w", cfg.DebugAddr, err)
	}
	reg := metrics.NewRegistry(pool)
	m := newWorkerMetrics(reg, db.New(pool))
	wlog := messaging.Logger(logger)
	// A queue of another type (AMQP_QUEUE_TYPE changed on a namespace in
	// use) stops the start here, with the migration in the message.
	if err := topo.DeclareQueues(); err != nil {
		return err
	}
	router, closeRouter, err := newRouter(cfg, topo, pool, m, logger, wlog)
	if err != nil {
		if closeRouter != nil {
			_ = closeRouter()
		}
		return err
	}
	defer closeRouter() //nolint:errcheck // best effort after the router stopped
	fwd, err := newForwarders(cfg, topo, pool, wlog)
	if err != nil {
		return err
	}

	status := newStatusServer(pool, metrics.Handler(reg))
	listener, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.WorkersHTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on WORKERS_HTTP_ADDR %s: %w", cfg.WorkersHTTPAddr, err)
	}
	httpServer := &http.Server{Handler: status.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = httpServer.Serve(listener) }()
	logger.Info("workers http listening", slog.String("addr", listener.Addr().String()))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()

	// Queues and bindings exist once the router runs; only then may events
	// flow, or a fanout exchange with no queue bound yet would drop them.
	select {
	case <-router.Running():
	case err := <-routerDone:
		return fmt.Errorf("router: %w", err)
	case <-ctx.Done():
		return nil
	}
	status.running.Store(true)
	forwardDone := make(chan error, 1)
	go func() { forwardDone <- fwd.run(ctx) }()
	go purgeForwarded(ctx, db.New(pool), cfg.OutboxRetention, time.Minute, logger)
	logger.Info("workers running",
		slog.Int("forwarders", cfg.OutboxForwarders),
		slog.Int("process_concurrency", cfg.ProcessConcurrency),
		slog.Int("start_processing_concurrency", cfg.StartConcurrency),
		slog.String("amqp_namespace", cfg.AMQPNamespace),
		slog.String("amqp_queue_type", cfg.AMQPQueueType))

	pending := map[string]chan error{"router": routerDone, "forwarders": forwardDone}
	var errs []error
	select {
	case err := <-routerDone:
		errs, pending["router"] = append(errs, err), nil
	case err := <-forwardDone:
		errs, pending["forwarders"] = append(errs, err), nil
	case <-ctx.Done():
	}
	cancel()
	logger.Info("shutting down")
	// Handlers get HANDLER_TIMEOUT to finish the message in hand.
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout+cfg.HandlerTimeout)
	defer stop()
	errs = append(errs, httpServer.Shutdown(shutdownCtx))
	for name, done := range pending {
		if done == nil {
			continue
		}
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-shutdownCtx.Done():
			errs = append(errs, fmt.Errorf("timed out waiting for the %s to stop", name))
		}
	}
	logger.Info("stopped")
	return errors.Join(errs...)
}
