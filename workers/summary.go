package main

import (
	"log/slog"
	"net"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/logging"
	"github.com/ordersvc/orders/internal/messaging"
)

// summary is the workers' start in one log line: what they forward and
// handle, the queues they consume and the services they depend on. The
// libraries' own start-up lines (one per subscriber) are at debug.
func summary(cfg config.Workers, topo messaging.Topology, statusAddr net.Addr) []any {
	var handlers []any // each route's handler and how many instances it runs
	for _, r := range messaging.Routes {
		n, _ := concurrency(cfg, r) // newRouter has refused an unknown setting
		handlers = append(handlers, slog.Int(r.Handler, n))
	}
	return []any{
		slog.Group("forwarders",
			slog.Int("count", cfg.Outbox.Forwarders),
			slog.Int("batch_size", cfg.Outbox.BatchSize),
			slog.Any("exchanges", topo.Exchanges())),
		slog.Group("handlers", handlers...),
		slog.Any("queues", topo.Queues()),
		slog.String("amqp", logging.Endpoint(cfg.AMQP.URL)),
		slog.String("amqp_namespace", cfg.AMQP.Namespace),
		slog.String("database", logging.Endpoint(cfg.Database.URL)),
		slog.String("status_addr", statusAddr.String()),
	}
}
