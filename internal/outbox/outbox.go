// Package outbox writes events into PostgreSQL in the caller's transaction
// (Watermill's SQL publisher through TxFromPgx) and reads them back for the
// forwarder in the workers, which moves them to RabbitMQ.
//
// The table is outbox_messages (created by a migration, so the API needs no
// DDL rights) in Watermill's PostgreSQLQueueSchema layout, with two changes
// made here: rows are claimed with FOR UPDATE SKIP LOCKED under READ
// COMMITTED, so any number of forwarders (goroutines or processes) share the
// table without blocking or serialisation failures; and an ack covers only
// the rows actually forwarded, never the rest of a batch after a failure.
package outbox

import (
	"database/sql"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
)

// Topic is the Watermill topic of the outbox; the forwarder subscribes to it
// and the destination topic travels inside each message's envelope.
const Topic = "outbox"

const table = "outbox_messages"

func tableName(string) string { return table }

// Publish writes msgs for topic into the outbox within tx: they become
// visible to the forwarder when, and only if, tx commits.
func Publish(tx pgx.Tx, topic string, msgs ...*message.Message) error {
	pub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: Schema(0)}, watermill.NopLogger{})
	if err != nil {
		return fmt.Errorf("outbox publisher: %w", err)
	}
	if err := forwarder.NewPublisher(pub, forwarder.PublisherConfig{ForwarderTopic: Topic}).Publish(topic, msgs...); err != nil {
		return fmt.Errorf("outbox publish %s: %w", topic, err)
	}
	return nil
}

// Schema is the outbox schema adapter; batchSize bounds the rows one
// forwarder claims at once (0: Watermill's default).
func Schema(batchSize int) wsql.SchemaAdapter {
	return schema{wsql.PostgreSQLQueueSchema{
		GenerateMessagesTableName: tableName,
		SubscribeBatchSize:        batchSize,
	}}
}

// Offsets is the outbox offsets adapter: forwarded rows are marked acked
// (and deleted later by retention), not deleted at once, so a recent event
// can still be inspected. confirmed, when not nil, runs before a batch's rows
// are marked: a forwarder that publishes without waiting for each confirm
// waits there for the whole batch's, and its error leaves every row of the
// batch pending (the claiming transaction rolls back).
func Offsets(confirmed func() error) wsql.OffsetsAdapter {
	return offsets{wsql.PostgreSQLQueueOffsetsAdapter{GenerateMessagesTableName: tableName}, confirmed}
}

type schema struct{ wsql.PostgreSQLQueueSchema }

// SelectQuery claims unforwarded rows that no other forwarder holds.
func (s schema) SelectQuery(params wsql.SelectQueryParams) (wsql.Query, error) {
	q, err := s.PostgreSQLQueueSchema.SelectQuery(params)
	if err != nil {
		return q, err
	}
	trimmed := strings.TrimSpace(q.Query)
	if !strings.HasSuffix(trimmed, "FOR UPDATE") {
		return wsql.Query{}, fmt.Errorf("outbox: unexpected select query shape: %q", q.Query)
	}
	q.Query = trimmed + " SKIP LOCKED"
	return q, nil
}

// SubscribeIsolationLevel is READ COMMITTED: with SKIP LOCKED, each claim
// re-reads the latest row versions instead of failing to serialise.
func (s schema) SubscribeIsolationLevel() sql.IsolationLevel { return sql.LevelReadCommitted }

type offsets struct {
	wsql.PostgreSQLQueueOffsetsAdapter
	confirmed func() error
}

// AckMessageQuery acks the rows up to the last one forwarded. Watermill
// passes the whole batch; when a message in the middle was nacked (RabbitMQ
// down, say) the rows after it were never forwarded and must stay pending.
func (a offsets) AckMessageQuery(params wsql.AckMessageQueryParams) (wsql.Query, error) {
	done := make([]wsql.Row, 0, len(params.Rows))
	for _, r := range params.Rows {
		if r.Offset <= params.LastRow.Offset {
			done = append(done, r)
		}
	}
	params.Rows = done
	if a.confirmed != nil {
		if err := a.confirmed(); err != nil {
			return wsql.Query{}, fmt.Errorf("outbox: batch of %d not confirmed, left pending: %w", len(done), err)
		}
	}
	return a.PostgreSQLQueueOffsetsAdapter.AckMessageQuery(params)
}
