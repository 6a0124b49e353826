// Package outbox is the write side of the transactional outbox: events go
// into PostgreSQL in the caller's transaction through Watermill's SQL
// publisher (TxFromPgx), wrapped in the envelope of Watermill's forwarder,
// which names the topic each event is for. internal/forwarder, in the
// workers, moves them to RabbitMQ.
//
// The table is outbox_messages, created by a migration (so the API needs no
// DDL rights), in the layout of Watermill's PostgreSQLQueueSchema.
package outbox

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
)

// Topic is the Watermill topic of the outbox: the topic Watermill's
// forwarder reads enveloped events from. The destination topic travels
// inside each event's envelope.
const Topic = "outbox"

// schema writes every topic's events into the one outbox table.
var schema = wsql.PostgreSQLQueueSchema{GenerateMessagesTableName: func(string) string { return "outbox_messages" }}

// Publish writes msgs for topic into the outbox within tx: they become
// visible to the forwarder when, and only if, tx commits.
func Publish(tx pgx.Tx, topic string, msgs ...*message.Message) error {
	return publish(wsql.TxFromPgx(tx), topic, msgs...)
}

// Queue adds the statement that writes msgs for topic into the outbox to
// batch. PostgreSQL runs a batch sent outside a transaction as one implicit
// transaction, so the events are committed with the batch's other
// statements, or not at all.
func Queue(batch *pgx.Batch, topic string, msgs ...*message.Message) error {
	return publish(batchExecutor{batch}, topic, msgs...)
}

// batchExecutor is the executor Watermill's SQL publisher writes through,
// queueing its statement in a batch instead of running it.
type batchExecutor struct{ batch *pgx.Batch }

func (b batchExecutor) ExecContext(_ context.Context, query string, args ...any) (wsql.Result, error) {
	b.batch.Queue(query, args...)
	return queuedResult{}, nil
}

func (batchExecutor) QueryContext(context.Context, string, ...any) (wsql.Rows, error) {
	return nil, errors.New("outbox: a batch only queues statements")
}

// queuedResult is the result of a statement not run yet.
type queuedResult struct{}

func (queuedResult) RowsAffected() (int64, error) {
	return 0, errors.New("outbox: the statement runs with its batch")
}

func publish(exec wsql.ContextExecutor, topic string, msgs ...*message.Message) error {
	pub, err := wsql.NewPublisher(exec, wsql.PublisherConfig{SchemaAdapter: schema}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("outbox publisher: %w", err)
	}
	if err := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: Topic}).Publish(topic, msgs...); err != nil {
		return fmt.Errorf("outbox publish %s: %w", topic, err)
	}
	return nil
}
