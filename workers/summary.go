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
func summary(cfg config.Config, topo messaging.Topology, statusAddr net.Addr) []any {
	return []any{
		slog.Group("forwarders",
			slog.Int("count", cfg.OutboxForwarders),
			slog.Int("batch_size", cfg.OutboxBatchSize),
			slog.Any("exchanges", topo.Exchanges())),
		slog.Group("handlers",
			slog.Int(messaging.StartProcessingHandler, cfg.StartConcurrency),
			slog.Int(messaging.StatusLogHandler, 1),
			slog.Int(messaging.ProcessOrderHandler, cfg.ProcessConcurrency)),
		slog.Any("queues", topo.Queues()),
		slog.String("amqp", logging.Endpoint(cfg.AMQPURL)),
		slog.String("amqp_namespace", cfg.AMQPNamespace),
		slog.String("database", logging.Endpoint(cfg.DatabaseURL)),
		slog.String("status_addr", statusAddr.String()),
	}
}
