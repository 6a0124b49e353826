// Package forwarder moves events from the outbox (written by
// internal/outbox in the API's transactions) to RabbitMQ, in the workers.
//
// One Forwarder does one thing in a loop, in one transaction per batch:
//
//  1. claim: up to a batch of unforwarded rows, FOR UPDATE SKIP LOCKED under
//     READ COMMITTED (db/queries/outbox.sql), so any number of forwarders,
//     in one process or several, share the table without blocking;
//  2. publish: each row goes to Watermill's forwarder, which unwraps the
//     envelope outbox.Publish wrote and publishes the event to its topic's
//     exchange, without waiting for RabbitMQ's confirm;
//  3. confirm: one wait, with a deadline, for the confirms of the whole batch;
//  4. ack: only then are the rows marked forwarded, and the transaction
//     commits. Anything short of that (a refused message, a lost broker, a
//     crash) rolls back and leaves the whole batch pending, to be forwarded
//     again; the consumers' inboxes absorb the copies that did arrive;
//  5. pace: the process's Pacer says when to claim next: at once after a
//     full batch; else when the listener (PostgreSQL LISTEN/NOTIFY) says
//     events were committed, spaced so that they gather into batches; and
//     every safety poll when nothing wakes it.
//
// It lives apart from internal/outbox so that the API, which only writes the
// outbox, does not link RabbitMQ's client.
package forwarder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	wmforwarder "github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/outbox"
)

// Publisher is what a Forwarder publishes through: a Watermill publisher
// whose Publish does not wait for RabbitMQ, and Confirmed, which waits for
// the confirms of everything published since its previous call.
// PipelinedPublisher is the one the workers use.
type Publisher interface {
	message.Publisher
	Confirmed(ctx context.Context) error
}

// Settings of the forwarders of one process.
type Settings struct {
	Forwarders   int           // forwarders in the process (OUTBOX_FORWARDERS)
	BatchSize    int           // rows one claim takes at most (OUTBOX_BATCH_SIZE)
	PollInterval time.Duration // spacing of claims while events trickle in (OUTBOX_POLL_INTERVAL)
	SafetyPoll   time.Duration // longest the process goes without a claim (OUTBOX_SAFETY_POLL)
	// ListenURL is where the process listens for wake-ups: a direct
	// connection to PostgreSQL (not through a transaction pooler).
	ListenURL string
}

// ConfirmDeadline bounds every wait for RabbitMQ: the hand-off of one event
// and the confirms of one batch. A batch not confirmed by then stays pending.
const ConfirmDeadline = 30 * time.Second

// retryInterval is the wait after a failed batch (database or broker down).
const retryInterval = time.Second

// Forwarder claims outbox rows and forwards them to RabbitMQ; see the
// package documentation for its loop. It is the message.Subscriber of
// Watermill's forwarder: the Watermill forwarder reads the claimed rows from
// it, one at a time, and acks each once handed to the publisher.
type Forwarder struct {
	pool   *pgxpool.Pool
	pub    Publisher
	pacer  *Pacer
	batch  int
	logger watermill.LoggerAdapter
	router *wmforwarder.Forwarder

	// floor is the offset where this forwarder's latest claim that found rows
	// started; its next claim starts there instead of at the oldest pending
	// row. Marking a row forwarded leaves its old version in the pending-rows
	// index until VACUUM; a claim that always started at the beginning would
	// walk every row forwarded since. A row below the floor is either held by
	// another forwarder (which forwards it or, failing, leaves it to the next
	// full scan) or was committed after rows with newer offsets: the claim
	// without a floor, every FullScanInterval, finds both. Only the claim
	// loop reads and writes it.
	floor int64

	forwarded atomic.Int64

	subscribed atomic.Bool
	closing    chan struct{}
	closeOnce  sync.Once
	stopped    chan struct{}
}

// New returns a forwarder that claims up to batchSize rows at a time from
// pool's outbox, publishes through pub and claims when pacer says.
func New(pool *pgxpool.Pool, pub Publisher, pacer *Pacer, batchSize int, logger watermill.LoggerAdapter) (*Forwarder, error) {
	f := &Forwarder{pool: pool, pub: pub, pacer: pacer, batch: batchSize, logger: logger,
		closing: make(chan struct{}), stopped: make(chan struct{})}
	router, err := wmforwarder.NewForwarder(f, pub, logger, wmforwarder.Config{
		ForwarderTopic: outbox.Topic,
		CloseTimeout:   ConfirmDeadline,
	})
	if err != nil {
		return nil, fmt.Errorf("watermill forwarder: %w", err)
	}
	f.router = router
	return f, nil
}

// Run forwards until ctx ends.
func (f *Forwarder) Run(ctx context.Context) error {
	if err := f.router.Run(ctx); err != nil {
		return fmt.Errorf("forwarder: %w", err)
	}
	return nil
}

// Forwarded is how many events this forwarder has forwarded (confirmed by
// RabbitMQ and marked in the outbox).
func (f *Forwarder) Forwarded() int64 { return f.forwarded.Load() }

// Subscribe implements message.Subscriber for Watermill's forwarder: it
// starts the claim loop, whose rows arrive on the channel until ctx ends or
// Close is called.
func (f *Forwarder) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic != outbox.Topic {
		return nil, fmt.Errorf("forwarder reads topic %q, not %q", outbox.Topic, topic)
	}
	if !f.subscribed.CompareAndSwap(false, true) {
		return nil, errors.New("forwarder: already subscribed")
	}
	out := make(chan *message.Message)
	go func() {
		defer close(f.stopped)
		defer close(out)
		f.loop(ctx, out)
	}()
	return out, nil
}

// Close implements message.Subscriber: it stops the claim loop (a batch in
// hand is left pending) and waits for it.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() { close(f.closing) })
	if f.subscribed.Load() {
		<-f.stopped
	}
	return nil
}

// loop claims, forwards and paces until ctx ends or Close is called.
func (f *Forwarder) loop(ctx context.Context, out chan<- *message.Message) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-f.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	retry := false // the latest claim failed: claim again after retryInterval
	rows := 0
	for {
		var full bool
		if retry {
			full = f.pacer.fullScanNow(time.Now())
		} else {
			var err error
			if full, err = f.pacer.await(ctx, rows, f.batch); err != nil {
				return
			}
		}
		var err error
		rows, err = f.forwardBatch(ctx, out, full)
		f.pacer.finished()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			if f.pacer.failed() {
				f.logger.Error("outbox forwarding failing, batches left pending", err, nil)
			}
			retry = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryInterval):
			}
		default:
			retry = false
			// Only a forwarded batch shows the way is clear again: an
			// empty claim says nothing about the broker.
			if rows > 0 && f.pacer.forwarded() {
				f.logger.Info("outbox forwarding again", nil)
			}
		}
	}
}

// forwardBatch claims, publishes, confirms and acks one batch, from the
// oldest pending row when full is set and from the forwarder's floor
// otherwise, and returns how many rows it forwarded; on any error the batch
// stays pending.
func (f *Forwarder) forwardBatch(ctx context.Context, out chan<- *message.Message, full bool) (int, error) {
	tx, err := f.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return 0, fmt.Errorf("begin claim: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit
	q := db.New(tx)

	floor := f.floor
	if full {
		floor = 0
	}
	rows, err := q.ClaimOutbox(ctx, db.ClaimOutboxParams{Floor: floor, BatchSize: int32(f.batch)}) //nolint:gosec // a small positive setting
	if err != nil {
		return 0, fmt.Errorf("claim: %w", err)
	}
	if len(rows) == 0 {
		return 0, tx.Commit(ctx)
	}
	f.floor = rows[0].Offset

	handedOff := f.publish(ctx, out, rows)
	confirmCtx, cancel := context.WithTimeout(ctx, ConfirmDeadline)
	confirmed := f.pub.Confirmed(confirmCtx)
	cancel()
	if err := errors.Join(handedOff, confirmed); err != nil {
		return 0, fmt.Errorf("batch of %d not forwarded: %w", len(rows), err)
	}

	offsets := make([]int64, len(rows))
	for i, r := range rows {
		offsets[i] = r.Offset
	}
	if err := q.MarkOutboxForwarded(ctx, offsets); err != nil {
		return 0, fmt.Errorf("mark forwarded: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit forwarded: %w", err)
	}
	f.forwarded.Add(int64(len(rows)))
	return len(rows), nil
}

// publish hands rows, in order, to Watermill's forwarder, each once the
// previous one is acked (handed to the publisher), and stops at the first
// that is not.
func (f *Forwarder) publish(ctx context.Context, out chan<- *message.Message, rows []db.ClaimOutboxRow) error {
	for _, row := range rows {
		msg, err := rowMessage(row)
		if err != nil {
			return err
		}
		if err := handOff(ctx, out, msg); err != nil {
			return fmt.Errorf("event at offset %d: %w", row.Offset, err)
		}
	}
	return nil
}

// rowMessage is the enveloped message outbox.Publish wrote into row.
func rowMessage(row db.ClaimOutboxRow) (*message.Message, error) {
	msg := message.NewMessage(row.Uuid, row.Payload)
	if len(row.Metadata) > 0 {
		if err := json.Unmarshal(row.Metadata, &msg.Metadata); err != nil {
			return nil, fmt.Errorf("metadata of the event at offset %d: %w", row.Offset, err)
		}
	}
	return msg, nil
}

// errNacked means Watermill's forwarder could not publish a message (the
// broker is gone, or the envelope is unreadable).
var errNacked = errors.New("not published")

// handOff gives msg to Watermill's forwarder and waits, up to
// ConfirmDeadline, for it to be published.
func handOff(ctx context.Context, out chan<- *message.Message, msg *message.Message) error {
	ctx, cancel := context.WithTimeout(ctx, ConfirmDeadline)
	defer cancel()
	msg.SetContext(ctx)
	select {
	case out <- msg:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-msg.Acked():
		return nil
	case <-msg.Nacked():
		return errNacked
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Group is the forwarders of one workers process: they share one RabbitMQ
// connection (each has its own channel), one Pacer and one listener, which
// wakes them when events are committed.
type Group struct {
	list       []*Forwarder
	publishers []*PipelinedPublisher
	conn       *amqp.ConnectionWrapper
	pacer      *Pacer
	listenURL  string
	logger     *slog.Logger
}

// NewGroup connects to RabbitMQ with amqpCfg (the events topology) and
// returns the process's forwarders.
func NewGroup(s Settings, pool *pgxpool.Pool, amqpCfg amqp.Config, logger *slog.Logger) (*Group, error) {
	wlog := messaging.Logger(logger)
	conn, err := amqp.NewConnection(amqpCfg.Connection, wlog)
	if err != nil {
		return nil, fmt.Errorf("event publisher connection: %w", err)
	}
	g := &Group{conn: conn, pacer: NewPacer(s.PollInterval, s.SafetyPoll), listenURL: s.ListenURL, logger: logger}
	for range s.Forwarders {
		pub := NewPipelinedPublisher(conn, amqpCfg, wlog)
		g.publishers = append(g.publishers, pub)
		fw, err := New(pool, pub, g.pacer, s.BatchSize, wlog)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}
		g.list = append(g.list, fw)
	}
	return g, nil
}

// Run listens for wake-ups and forwards until ctx ends, then closes every
// forwarder and the connection.
func (g *Group) Run(ctx context.Context) error {
	listenCtx, stopListening := context.WithCancel(ctx)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		Listen(listenCtx, g.listenURL, g.pacer, g.logger)
	}()
	defer func() {
		stopListening()
		<-listening
	}()
	errs := make(chan error, len(g.list))
	for _, fw := range g.list {
		go func() { errs <- fw.Run(ctx) }()
	}
	var all []error
	for range g.list {
		all = append(all, <-errs)
	}
	for _, pub := range g.publishers {
		_ = pub.Close()
	}
	all = append(all, g.conn.Close())
	return errors.Join(all...)
}

// Forwarded is how many events the group's forwarders have forwarded.
func (g *Group) Forwarded() int64 {
	var n int64
	for _, fw := range g.list {
		n += fw.Forwarded()
	}
	return n
}
