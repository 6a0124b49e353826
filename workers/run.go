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

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/database"
	"github.com/ordersvc/orders/internal/forwarder"
	"github.com/ordersvc/orders/internal/logging"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/metrics"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/telemetry"
)

// run starts the forwarders, the handlers and the status endpoint, and
// drains them when ctx ends: in-flight handlers finish (up to
// HANDLER_TIMEOUT) and anything unfinished is left unacked for redelivery.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	return runRoutes(ctx, args, getenv, stdout, messaging.Routes, handlers)
}

// runRoutes is run serving routes, each route's handler function bound by
// bound. The workers serve messaging.Routes with handlers; a test serves an
// extended copy of both through the same path (workers/new_event_test.go).
func runRoutes(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer,
	routes messaging.Table, bound map[string]bindHandler,
) error {
	cfg, err := config.LoadWorkers(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	logger := logging.New(stdout, cfg.LogLevel, cfg.LogFormat)
	topo := messaging.Topology{Namespace: cfg.AMQP.Namespace, URL: cfg.AMQP.URL, QueueType: cfg.AMQP.QueueType, Routes: routes}

	if len(args) > 0 {
		return runCommand(ctx, args, topo, stdout)
	}

	pool, err := database.Start(ctx, cfg.Database.URL, cfg.Database.MigrationURL, cfg.Database.MaxConns, cfg.Database.MigrateOnStart, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	shutdownTracing, tracing, err := telemetry.Setup(ctx, "orders-workers", getenv)
	if err != nil {
		return err
	}
	defer shutdownTracing(context.WithoutCancel(ctx)) //nolint:errcheck // best effort flush at exit

	debugAddr, err := metrics.ServeDebug(ctx, cfg.DebugAddr, logger)
	if err != nil {
		return fmt.Errorf("listen on DEBUG_ADDR %s: %w", cfg.DebugAddr, err)
	}
	reg := metrics.NewRegistry(pool)
	m := newWorkerMetrics(reg, db.New(pool), routes)
	wlog := messaging.Logger(logger)
	// A queue of another type (AMQP_QUEUE_TYPE changed on a namespace in
	// use) stops the start here, with the migration in the message.
	if err := topo.DeclareQueues(); err != nil {
		return err
	}
	router, closeRouter, err := newRouter(cfg, topo, bound, pool, m, tracing, logger, wlog)
	if err != nil {
		if closeRouter != nil {
			_ = closeRouter()
		}
		return err
	}
	defer closeRouter() //nolint:errcheck // best effort after the router stopped
	fwd, err := forwarder.NewGroup(forwarder.Settings{
		Forwarders: cfg.Outbox.Forwarders, BatchSize: cfg.Outbox.BatchSize,
		PollInterval: cfg.Outbox.PollInterval, SafetyPoll: cfg.Outbox.SafetyPoll,
		// LISTEN needs a session of its own: the direct connection, not a
		// transaction pooler.
		ListenURL: cfg.Database.MigrationURL,
	}, pool, topo.Events(""), logger)
	if err != nil {
		return err
	}

	status := newStatusServer(pool, metrics.Handler(reg))
	listener, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on WORKERS_HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	httpServer := &http.Server{Handler: status.handler(), ReadHeaderTimeout: 5 * time.Second}
	logger.Info("workers http listening", slog.String("addr", listener.Addr().String()))
	addrs := process.Addrs(process.WorkersHTTPAddr, listener.Addr().String(), debugAddr)
	process.AnnounceListening(getenv, logger, addrs)

	// The status endpoint, the router and the forwarders run as one group:
	// the first of them to fail stops the others, as a signal does.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return process.ServeHTTP(gctx, httpServer, listener, cfg.ShutdownTimeout) })
	g.Go(func() error {
		if err := router.Run(gctx); err != nil {
			return fmt.Errorf("router: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		// Queues and bindings exist once the router runs; only then may
		// events flow, or a fanout exchange with no queue bound yet would
		// drop them.
		select {
		case <-router.Running():
		case <-gctx.Done():
			return nil
		}
		status.running.Store(true)
		logger.Info("workers running", summary(cfg, topo, listener.Addr())...)
		g.Go(func() error {
			purgeForwarded(gctx, db.New(pool), cfg.Outbox.Retention, time.Minute, logger)
			return nil
		})
		// Ready, to the service manager, when /ready would answer 200.
		g.Go(func() error {
			process.AnnounceReady(gctx, getenv, logger, status.ok, "running", addrs)
			return nil
		})
		if err := fwd.Run(gctx); err != nil {
			return fmt.Errorf("forwarders: %w", err)
		}
		return nil
	})

	<-gctx.Done()
	logger.Info("shutting down")
	process.AnnounceStopping(getenv, logger)
	// Handlers get HANDLER_TIMEOUT to finish the message in hand.
	if err := process.Drain(g, cfg.ShutdownTimeout+cfg.Handlers.Timeout); err != nil {
		return fmt.Errorf("workers: %w", err)
	}
	logger.Info("stopped")
	return nil
}
