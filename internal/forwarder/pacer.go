package forwarder

import (
	"context"
	"sync"
	"time"
)

// Pacer says when the forwarders of one workers process claim.
//
// Forwarders claim when woken: Listen wakes the pacer whenever events are
// committed. A claim that fills its batch means more events are waiting:
// that forwarder claims again at once, and wakes another to join it, so
// under a backlog every forwarder claims. Otherwise claims are spaced: the
// next claim by any forwarder starts no sooner than interval after the
// previous one, so events committed meanwhile gather into one batch instead
// of each costing a transaction and a confirm round trip of its own; the
// first event after a quiet spell is claimed at once. A spaced claim also
// waits for the process's previous claim to finish (its batch confirmed and
// acked, up to overlapAfter), so the spacing grows by itself when the
// machine is busy and claims slow down, and batches grow with it: a short
// interval costs no transaction per event under load. Without wake-ups (the
// listener lost its connection, or a notification went missing) a claim
// still happens every safetyPoll, by one forwarder of the process, and a
// full scan follows activity within FullScanInterval: the only claims of an
// idle process.
type Pacer struct {
	interval, safetyPoll time.Duration

	// signal wakes one waiting forwarder to look at the state again; a
	// token is left only when the state changed, so a flood of
	// notifications costs no more wake-ups than there are claims.
	signal chan struct{}

	mu      sync.Mutex
	next    time.Time // the earliest start of the next spaced claim
	last    time.Time // the start of the process's latest claim
	woken   bool      // events were committed since the latest claim started
	backlog bool      // the latest claim filled its batch
	running int       // claims granted and not finished

	// One claim per FullScanInterval, by any forwarder of the process,
	// starts from the oldest pending row instead of its forwarder's floor.
	lastScan time.Time
	scanOwed bool // a claim from a floor happened since the latest full scan

	// broken: a batch failed and none has been forwarded since, by any
	// forwarder of the process; an outage is logged once per process.
	broken bool
}

// NewPacer returns the pacer the forwarders of a process share. The first
// claim is due at once, for whatever was committed while no forwarder ran.
func NewPacer(interval, safetyPoll time.Duration) *Pacer {
	return &Pacer{interval: interval, safetyPoll: max(safetyPoll, interval),
		signal: make(chan struct{}, 1), woken: true}
}

// Wake says events were committed: a waiting forwarder claims them, at once
// or at the next spaced claim.
func (p *Pacer) Wake() {
	p.mu.Lock()
	was := p.woken
	p.woken = true
	p.mu.Unlock()
	if !was {
		p.poke()
	}
}

// finished says a claim the pacer granted is over, whatever its outcome.
// A claim woken meanwhile may start now.
func (p *Pacer) finished() {
	p.mu.Lock()
	p.running--
	ready := p.running == 0 && p.woken
	p.mu.Unlock()
	if ready {
		p.poke()
	}
}

// overlapAfter is how long a spaced claim waits for the process's previous
// claim to finish before it starts anyway: a claim normally finishes within
// milliseconds, and one held up (a slow confirm) does not hold back the
// events committed behind it for longer than this.
const overlapAfter = 50 * time.Millisecond

// CatchUp says events may have been committed unannounced (the listener was
// away): the next claim scans from the oldest pending row.
func (p *Pacer) CatchUp() {
	p.mu.Lock()
	p.lastScan = time.Time{}
	p.mu.Unlock()
	p.Wake()
}

// fullScan reports whether a claim starting now scans from the oldest
// pending row and, if so, counts it as done; p.mu is held. A claim from a
// floor owes one: even with nothing more committed, a full scan follows
// within FullScanInterval, so that an event committed out of order (below
// the floors) is found then and not at the safety poll.
func (p *Pacer) fullScan(now time.Time) bool {
	if now.Sub(p.lastScan) < FullScanInterval {
		p.scanOwed = true
		return false
	}
	p.lastScan, p.scanOwed = now, false
	return true
}

// fullScanNow is fullScan for a claim that did not wait for the pacer (a
// forwarder retrying a failed batch); like every claim the pacer knows of,
// it runs until finished.
func (p *Pacer) fullScanNow(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running++
	return p.fullScan(now)
}

// failed records a failed batch and reports whether it is the first since
// the process last forwarded one: the moment to log the outage.
func (p *Pacer) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	first := !p.broken
	p.broken = true
	return first
}

// forwarded records a forwarded batch and reports whether it ends an
// outage: the moment to log the way back.
func (p *Pacer) forwarded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	was := p.broken
	p.broken = false
	return was
}

func (p *Pacer) poke() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// await returns when the forwarder whose previous claim found rows of a
// batch of batch rows should claim again, and whether that claim scans from
// the oldest pending row instead of the forwarder's floor; or it returns
// ctx's error.
func (p *Pacer) await(ctx context.Context, rows, batch int) (full bool, err error) {
	if rows >= batch {
		p.mu.Lock()
		now := time.Now()
		p.backlog, p.last = true, now
		p.running++
		full = p.fullScan(now)
		p.mu.Unlock()
		p.poke() // another forwarder joins
		return full, nil
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	p.mu.Lock()
	p.backlog = false
	p.mu.Unlock()
	for {
		g := p.claim(time.Now())
		if g.ok {
			return g.full, nil
		}
		if timer == nil {
			timer = time.NewTimer(g.wait)
		} else {
			timer.Reset(g.wait)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-p.signal:
		case <-timer.C:
		}
	}
}

// grant is the pacer's answer to a forwarder ready to claim.
type grant struct {
	ok   bool          // claim now
	full bool          // from the oldest pending row, not the forwarder's floor
	wait time.Duration // when not ok: how long until a claim is due, barring a wake-up
}

// claim says whether a claim may start now. A claim nothing woke (the owed
// full scan, the safety poll) goes to one forwarder, the first to ask, and
// scans from the oldest pending row; the others wait for the next.
func (p *Pacer) claim(now time.Time) grant {
	p.mu.Lock()
	defer p.mu.Unlock()
	var full bool
	switch {
	case p.woken && (p.backlog || !now.Before(p.next) && (p.running == 0 || !now.Before(p.last.Add(overlapAfter)))):
		p.woken = false
		full = p.fullScan(now)
	case !p.woken && !now.Before(p.unwoken()):
		p.lastScan, p.scanOwed, full = now, false, true
	case p.woken && now.Before(p.next):
		return grant{wait: p.next.Sub(now)}
	case p.woken: // the previous claim is still running; its end pokes
		return grant{wait: p.last.Add(overlapAfter).Sub(now)}
	default:
		return grant{wait: p.unwoken().Sub(now)}
	}
	p.running++
	p.last, p.next = now, now.Add(p.interval)
	return grant{ok: true, full: full}
}

// FullScanInterval is how often a claim starts from the beginning of the
// pending rows instead of from its forwarder's floor (see Forwarder): the
// longest an event committed out of order (its offset is older than events
// already forwarded) waits for a forwarder. The forwarders of a process take
// turns: one full scan per interval, by whichever claims first once it is
// due.
const FullScanInterval = time.Second

// unwoken is when the next claim is due with nothing waking the process:
// the owed full scan, or the safety poll.
func (p *Pacer) unwoken() time.Time {
	at := p.last.Add(p.safetyPoll)
	if scan := p.lastScan.Add(FullScanInterval); p.scanOwed && scan.Before(at) {
		return scan
	}
	return at
}
