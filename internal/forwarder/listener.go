package forwarder

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/gen/db"
)

const (
	// maxReconnectDelay bounds the wait between attempts to listen again.
	maxReconnectDelay = 5 * time.Second
	// listenerName names the wake-up connection in pg_stat_activity.
	listenerName = "orders-workers outbox wake-ups"
)

// Listen wakes pacer whenever outbox rows are committed (the API announces
// them after each commit: internal/outbox.Announcer), until ctx ends. It holds one connection of its
// own to databaseURL, not one from the pool: LISTEN needs a session, which a
// transaction pooler such as PgBouncer does not give, so databaseURL must
// reach PostgreSQL directly. When the connection is lost (PostgreSQL
// restarted, the backend was terminated) it connects again with a growing
// delay, listens again, and then wakes the pacer once: a catch-up claim for
// whatever was committed while nobody listened.
func Listen(ctx context.Context, databaseURL string, pacer *Pacer, logger *slog.Logger) {
	delay := 100 * time.Millisecond
	lost := false
	for ctx.Err() == nil {
		err := listen(ctx, databaseURL, func() {
			delay = 100 * time.Millisecond
			if lost {
				lost = false
				logger.Info("outbox wake-ups restored")
			}
			pacer.CatchUp()
		}, pacer.Wake)
		if ctx.Err() != nil {
			return
		}
		if !lost {
			lost = true
			logger.Info("outbox wake-ups lost; forwarders fall back to the safety poll until they are back", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, maxReconnectDelay)
	}
}

// listen listens on one connection until it fails or ctx ends: listening
// runs once LISTEN took effect, woken on every notification.
func listen(ctx context.Context, databaseURL string, listening, woken func()) error {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("parse database URL: %w", err)
	}
	cfg.RuntimeParams["application_name"] = listenerName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // the connection is abandoned either way
	if err := db.New(conn).ListenForOutbox(ctx); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	listening()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("wait for notification: %w", err)
		}
		woken()
	}
}
