package main

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/internal/outbox"
)

// announceOutbox runs the announcer that wakes the workers' forwarders after
// orders' events commit, until stop, which waits for it to end.
func announceOutbox(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) (announcer *outbox.Announcer, stop func()) {
	announcer = outbox.NewAnnouncer(pool, logger)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		announcer.Run(runCtx)
	}()
	return announcer, func() {
		cancel()
		<-done
	}
}
