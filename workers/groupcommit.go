package main

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/gen/db"
)

// groupCommit applies the effects of concurrent process_order handlers in
// groups: one statement and one transaction for every task that arrived
// while the previous group was being written, instead of a commit per task.
// A task alone goes straight to the database, so an idle system waits for
// nothing; under load the groups grow by themselves, up to the number of
// task handlers. Every handler still acks its message only after its own
// task is committed.
//
// There is no goroutine of its own: the first handler to arrive writes the
// group and, once its own task is done, hands the next group to the oldest
// task still waiting.
type groupCommit struct {
	queries *db.Queries
	timeout time.Duration // of one group's statement
	handler string        // the route's handler: the key of its inbox rows
	written func(n int)   // observes each group's size

	mu    sync.Mutex
	queue []*markRequest
	busy  bool // a handler is writing a group; the queue waits for it
}

type markRequest struct {
	orderID   uuid.UUID
	messageID string
	lead      chan struct{} // closed: this request's handler writes the next group
	done      chan struct{} // closed: row and err are set
	row       *db.ProcessOrdersOnceRow
	err       error
}

// mark records the task in the inbox and sets the order's processed_at once.
// The returned row is nil when the order does not exist.
func (g *groupCommit) mark(ctx context.Context, orderID uuid.UUID, messageID string) (*db.ProcessOrdersOnceRow, error) {
	r := &markRequest{orderID: orderID, messageID: messageID, lead: make(chan struct{}), done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	leader := !g.busy
	g.busy = true
	g.mu.Unlock()

	if !leader {
		// The statement of each group is bounded by g.timeout, so this wait
		// is bounded too; a handler cancelled meanwhile still gets its answer.
		select {
		case <-r.done:
			return r.row, r.err
		case <-r.lead:
		}
	}
	for {
		g.mu.Lock()
		group := g.queue
		g.queue = nil
		g.mu.Unlock()
		g.write(ctx, group)
		select {
		case <-r.done:
		default:
			continue
		}
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.busy = false
		} else {
			close(g.queue[0].lead)
		}
		g.mu.Unlock()
		return r.row, r.err
	}
}

// write runs one group's statement and answers every request in it.
func (g *groupCommit) write(ctx context.Context, group []*markRequest) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	defer cancel()
	params := db.ProcessOrdersOnceParams{Handler: g.handler}
	for _, r := range group {
		params.OrderIds = append(params.OrderIds, r.orderID)
		params.MessageIds = append(params.MessageIds, r.messageID)
	}
	rows, err := g.queries.ProcessOrdersOnce(ctx, params)
	g.written(len(group))
	byMessage := make(map[string]db.ProcessOrdersOnceRow, len(rows))
	for _, row := range rows {
		byMessage[row.MessageID] = row
	}
	for _, r := range group {
		if row, ok := byMessage[r.messageID]; ok && err == nil {
			r.row = &row
			// The same message twice in one group (two deliveries at once):
			// only one of them applied it.
			again := row
			again.First = false
			byMessage[r.messageID] = again
		}
		r.err = err
		close(r.done)
	}
}
