package forwarder

import (
	"sync"
	"time"
)

// Pacer spaces the claims of all the forwarders of one workers process.
//
// A claim that fills its batch means more events are waiting: that forwarder
// claims again at once, and under a backlog every forwarder does. A claim
// that found fewer rows took everything there was: the next claim by any
// forwarder starts no sooner than interval after the previous one, so events
// gather into batches instead of each costing a transaction and a confirm
// round trip of its own. Every claim that finds nothing doubles the spacing,
// up to idleMax, and the first claim that finds events goes back to interval.
//
// Without it, each forwarder claimed again as soon as it had forwarded
// anything: at 350 events/s the 8 forwarders claimed one or two rows at a
// time, and the pipeline cost as much CPU as at twice the rate.
type Pacer struct {
	interval, idleMax time.Duration
	scans             *scanClock // one full scan per interval for the process

	mu   sync.Mutex
	next time.Time // the earliest start of the next spaced claim
	idle int       // claims in a row, by any forwarder, that found nothing
}

// NewPacer returns the pacer the forwarders of a process share.
func NewPacer(interval, idleMax time.Duration) *Pacer {
	return &Pacer{interval: interval, idleMax: max(idleMax, interval), scans: &scanClock{every: FullScanInterval}}
}

// wait is how long a forwarder waits before its next claim, now that its
// last one found rows rows of a batch of batch.
func (p *Pacer) wait(rows, batch int, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gap time.Duration
	var start time.Time
	switch {
	case rows >= batch:
		p.idle = 0
		return 0
	case rows > 0:
		// The next spaced claim; but the first events after an idle spell
		// need none of the long waits planned then: interval from now.
		wasIdle := p.idle > 0
		p.idle, gap = 0, p.interval
		start = p.next
		if start.Before(now) {
			start = now
		} else if limit := now.Add(gap); wasIdle && start.After(limit) {
			start = limit
		}
	default:
		gap = p.interval << min(p.idle, 16)
		if gap > p.idleMax || gap <= 0 {
			gap = p.idleMax
		}
		p.idle++
		start = now.Add(gap)
		if p.next.After(start) {
			start = p.next
		}
	}
	p.next = start.Add(gap)
	return start.Sub(now)
}

// FullScanInterval is how often a claim starts from the beginning of the
// pending rows instead of from its forwarder's floor (see Forwarder): the
// longest an event committed out of order (its offset is older than events
// already forwarded) waits for a forwarder. The forwarders of a process take
// turns: one full scan per interval, by whichever claims first once it is
// due.
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
