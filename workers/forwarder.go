package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/outbox"
)

// forwarders move outbox rows to RabbitMQ. One forwarder publishes one
// message at a time and waits for the broker's confirm, so throughput comes
// from running several: each claims its own batch of rows (SKIP LOCKED) and
// they share one publisher whose channel pool lets their confirms overlap.
// A row is acked only after RabbitMQ confirmed it; while the broker is down
// the publish fails, the row stays pending and is retried.
type forwarders struct {
	list      []*forwarder.Forwarder
	publisher *amqp.Publisher
}

func newForwarders(cfg config.Config, topo messaging.Topology, pool *pgxpool.Pool, wlog watermill.LoggerAdapter) (*forwarders, error) {
	pub, err := amqp.NewPublisher(topo.Events("", cfg.OutboxForwarders), wlog)
	if err != nil {
		return nil, fmt.Errorf("event publisher: %w", err)
	}
	f := &forwarders{publisher: pub}
	ackDeadline := 30 * time.Second
	for range cfg.OutboxForwarders {
		sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(pool), wsql.SubscriberConfig{
			SchemaAdapter:  outbox.Schema(cfg.OutboxBatchSize),
			OffsetsAdapter: outbox.Offsets(),
			PollInterval:   cfg.OutboxPollInterval,
			ResendInterval: time.Second,
			RetryInterval:  time.Second,
			BackoffManager: outbox.NewIdleBackoff(cfg.OutboxPollInterval, cfg.OutboxIdlePollMax, time.Second),
			AckDeadline:    &ackDeadline,
		}, wlog)
		if err != nil {
			return nil, fmt.Errorf("outbox subscriber: %w", err)
		}
		fw, err := forwarder.NewForwarder(sub, pub, wlog, forwarder.Config{
			ForwarderTopic: outbox.Topic,
			CloseTimeout:   ackDeadline,
		})
		if err != nil {
			return nil, fmt.Errorf("forwarder: %w", err)
		}
		f.list = append(f.list, fw)
	}
	return f, nil
}

// run forwards until ctx ends, then closes every forwarder and the publisher.
func (f *forwarders) run(ctx context.Context) error {
	errs := make(chan error, len(f.list))
	for _, fw := range f.list {
		go func() { errs <- fw.Run(ctx) }()
	}
	var first error
	for range f.list {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if err := f.publisher.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
