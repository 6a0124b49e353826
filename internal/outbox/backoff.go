package outbox

import (
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
)

// IdleBackoff paces one forwarder's polls: every poll that finds the outbox
// empty doubles the wait, from base up to max, and the first poll that finds
// events goes back to base. Under load nothing changes; an idle system stops
// costing PostgreSQL a transaction per forwarder every base (8 forwarders at
// 20 ms were 400 a second), and the first event after a quiet spell waits
// only until the soonest of the forwarders looks.
type IdleBackoff struct {
	base, max time.Duration
	idle      int
	errors    wsql.BackoffManager // Watermill's own handling of query errors
}

// NewIdleBackoff returns the backoff of one forwarder (it keeps state: one each).
func NewIdleBackoff(base, maxWait, retry time.Duration) *IdleBackoff {
	return &IdleBackoff{base: base, max: max(maxWait, base), errors: wsql.NewDefaultBackoffManager(base, retry)}
}

// HandleError implements wsql.BackoffManager.
func (b *IdleBackoff) HandleError(logger watermill.LoggerAdapter, noMsg bool, err error) time.Duration {
	if err != nil || !noMsg {
		b.idle = 0
		return b.errors.HandleError(logger, noMsg, err)
	}
	wait := b.base << min(b.idle, 16)
	if wait >= b.max || wait <= 0 {
		return b.max
	}
	b.idle++
	return wait
}
