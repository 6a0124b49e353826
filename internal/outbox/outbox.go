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
	"sync"
	"time"

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
// forwarder claims at once (0: Watermill's default). Each forwarder needs
// its own: it remembers where the forwarder's last claim started.
func Schema(batchSize int) wsql.SchemaAdapter {
	return newSchema(batchSize, &scanClock{every: FullScanInterval})
}

func newSchema(batchSize int, scans *scanClock) schema {
	f := &floor{scans: scans}
	return schema{wsql.PostgreSQLQueueSchema{
		GenerateMessagesTableName: tableName,
		SubscribeBatchSize:        batchSize,
		GenerateWhereClause:       f.where,
	}, f}
}

// FullScanInterval is how often a claim starts from the beginning of the
// pending rows instead of from its forwarder's last claim: the longest an
// event committed out of order (its offset is older than events already
// forwarded) waits for a forwarder. The forwarders of a process take turns:
// one full scan per interval, by whichever claims first once it is due.
const FullScanInterval = time.Second

// scanClock says when the next full scan is due; forwarders sharing one
// share the full scans.
type scanClock struct {
	every time.Duration

	mu   sync.Mutex
	last time.Time
}

// due reports whether a full scan is due and, if so, counts it as done.
func (c *scanClock) due(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.last) < c.every {
		return false
	}
	c.last = now
	return true
}

// floor lets a forwarder's claim start at the offset where its previous
// claim started instead of at the oldest pending row. Marking a row
// forwarded leaves its old version in the pending-rows index until VACUUM;
// a claim that always started at the beginning would walk every row
// forwarded since, which under a sustained load of 1,000 events/s made
// PostgreSQL spend most of a core on the forwarders' polls. A row below the
// floor is either held by another forwarder (which forwards it or, failing,
// leaves it to the next full scan) or was committed after rows with newer
// offsets; the claim without a floor, every FullScanInterval, finds both.
type floor struct {
	scans *scanClock

	mu       sync.Mutex
	offset   int64 // first offset of the latest claim that found rows; 0: none yet
	claiming bool  // the current claim has not seen a row yet
	rows     int   // rows the current (or latest) claim found
}

func (f *floor) where(wsql.GenerateWhereClauseParams) (string, []any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claiming, f.rows = true, 0
	if f.offset == 0 || f.scans.due(time.Now()) {
		return "", nil
	}
	return `"offset" >= $1`, []any{f.offset}
}

// saw records a claimed row; rows arrive in offset order, so the first one
// of a claim is its lowest.
func (f *floor) saw(offset int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows++
	if f.claiming {
		f.offset, f.claiming = offset, false
	}
}

// claimed is how many rows the latest claim found.
func (f *floor) claimed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rows
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

type schema struct {
	wsql.PostgreSQLQueueSchema
	floor *floor
}

// UnmarshalMessage reads a claimed row and moves the floor to the claim's
// first row.
func (s schema) UnmarshalMessage(params wsql.UnmarshalMessageParams) (wsql.Row, error) {
	row, err := s.PostgreSQLQueueSchema.UnmarshalMessage(params)
	if err == nil {
		s.floor.saw(row.Offset)
	}
	return row, err
}

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
