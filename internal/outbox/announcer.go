package outbox

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
)

// AnnounceGap is the least time between two announcements of one process:
// events committed meanwhile share the next one. The forwarders space their
// claims by OUTBOX_POLL_INTERVAL anyway, so a shorter gap would wake them no
// sooner under load; it bounds the notifications to 1/AnnounceGap a second
// however fast orders come.
const AnnounceGap = 5 * time.Millisecond

// Announcer tells the forwarders (internal/forwarder.Listen) that events
// were committed, so that they claim them at once instead of at their next
// safety poll. It notifies after the events' commit, in a transaction of
// its own on the pool, never in theirs (see AnnounceOutbox). The first
// commit after a quiet spell is announced at once; later ones are gathered
// into at most one announcement per AnnounceGap. An announcement that is
// lost (PostgreSQL unreachable, the process killed) delays its events until
// the forwarders' safety poll, and loses nothing.
//
// A nil *Announcer announces nothing.
type Announcer struct {
	queries *db.Queries
	logger  *slog.Logger
	signal  chan struct{} // holds a token while commits wait to be announced
}

// NewAnnouncer returns an Announcer that notifies through pool once Run runs.
func NewAnnouncer(pool *pgxpool.Pool, logger *slog.Logger) *Announcer {
	return &Announcer{queries: db.New(pool), logger: logger, signal: make(chan struct{}, 1)}
}

// Committed says that events were committed: it returns at once, and Run
// announces them.
func (a *Announcer) Committed() {
	if a == nil {
		return
	}
	select {
	case a.signal <- struct{}{}:
	default: // an announcement is already due; it covers these events too
	}
}

// Announce wakes the forwarders once, now, through q: one announcement as
// Run sends it, for a writer with no Announcer of its own.
func Announce(ctx context.Context, q *db.Queries) error {
	return q.AnnounceOutbox(ctx)
}

// Start runs Run in the background until stop, which waits for it to end.
func (a *Announcer) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run announces commits until ctx ends.
func (a *Announcer) Run(ctx context.Context) {
	gap := time.NewTimer(AnnounceGap)
	defer gap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.signal:
		}
		if err := Announce(ctx, a.queries); err != nil && ctx.Err() == nil {
			// An outage is logged once by the pool's watch; each lost
			// announcement is worth a line only when debugging.
			a.logger.Debug("outbox announcement lost; the forwarders' safety poll will find the events", slog.Any("error", err))
		}
		gap.Reset(AnnounceGap)
		select {
		case <-ctx.Done():
			return
		case <-gap.C:
		}
	}
}
