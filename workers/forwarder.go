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

// forwarders move outbox rows to RabbitMQ. Each claims its own batch of rows
// (SKIP LOCKED) and publishes the whole batch without waiting message by
// message; before the rows are marked as forwarded it waits for RabbitMQ's
// confirms of the batch, so one round trip to the broker serves the batch.
// When a message is refused or the broker goes away, the claiming
// transaction rolls back and the batch stays pending, to be sent again
// (consumers' inboxes absorb the copies that did arrive).
type forwarders struct {
	list       []*forwarder.Forwarder
	publishers []*messaging.PipelinedPublisher
	conn       *amqp.ConnectionWrapper
}

func newForwarders(cfg config.Workers, topo messaging.Topology, pool *pgxpool.Pool, wlog watermill.LoggerAdapter) (*forwarders, error) {
	amqpCfg := topo.Events("")
	conn, err := amqp.NewConnection(amqpCfg.Connection, wlog)
	if err != nil {
		return nil, fmt.Errorf("event publisher connection: %w", err)
	}
	f := &forwarders{conn: conn}
	ackDeadline := 30 * time.Second
	pacer := outbox.NewPacer(cfg.Outbox.PollInterval, cfg.Outbox.IdlePollMax, time.Second)
	for range cfg.Outbox.Forwarders {
		pub := messaging.NewPipelinedPublisher(conn, amqpCfg, wlog)
		f.publishers = append(f.publishers, pub)
		confirmed := func() error {
			ctx, cancel := context.WithTimeout(context.Background(), ackDeadline)
			defer cancel()
			return pub.Confirmed(ctx)
		}
		schema, backoff := pacer.Forwarder(cfg.Outbox.BatchSize)
		sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(pool), wsql.SubscriberConfig{
			SchemaAdapter:  schema,
			OffsetsAdapter: outbox.Offsets(confirmed),
			ResendInterval: time.Second,
			// The pacer decides every wait between claims, after a failed
			// one too; Watermill's PollInterval and RetryInterval only feed
			// its default backoff manager.
			BackoffManager: backoff,
			AckDeadline:    &ackDeadline,
		}, wlog)
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("outbox subscriber: %w", err)
		}
		fw, err := forwarder.NewForwarder(sub, pub, wlog, forwarder.Config{
			ForwarderTopic: outbox.Topic,
			CloseTimeout:   ackDeadline,
		})
		if err != nil {
			_ = conn.Close()
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
	for _, pub := range f.publishers {
		_ = pub.Close()
	}
	if err := f.conn.Close(); err != nil && first == nil {
		first = err
	}
	return first
}
