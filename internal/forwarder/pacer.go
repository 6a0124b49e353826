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
// first event after a quiet spell is claimed at once. Without wake-ups (the
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

	// One claim per FullScanInterval, by any forwarder of the process,
	// starts from the oldest pending row instead of its forwarder's floor.
	lastScan time.Time
	scanOwed bool // a claim from a floor happened since the latest full scan
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

// CatchUp says events may have been committed unannounced (the listener was
// away): the next claim scans from the oldest pending row.
func (p *Pacer) CatchUp() {
	p.mu.Lock()
	p.lastScan = time.Time{}
	p.mu.Unlock()
	p.Wake()
}

// fullScan reports whether the claim starting now scans from the oldest
// pending row and, if so, counts it as done. A claim from a floor owes one:
// even with nothing more committed, a full scan follows within
// FullScanInterval, so that an event committed out of order (below the
// floors) is found then and not at the safety poll.
func (p *Pacer) fullScan(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.lastScan) < FullScanInterval {
		p.scanOwed = true
		return false
	}
	p.lastScan, p.scanOwed = now, false
	return true
}

func (p *Pacer) poke() {
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

// await returns when the forwarder whose previous claim found rows of a
// batch of batch rows should claim again, or with ctx's error.
func (p *Pacer) await(ctx context.Context, rows, batch int) error {
	if rows >= batch {
		p.mu.Lock()
		p.backlog, p.last = true, time.Now()
		p.mu.Unlock()
		p.poke() // another forwarder joins
		return nil
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
		wait, ok := p.claim(time.Now())
		if ok {
			return nil
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.signal:
		case <-timer.C:
		}
	}
}

// claim reports whether a claim may start now and, if not, how long until
// one may (barring a wake-up).
func (p *Pacer) claim(now time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.woken && (p.backlog || !now.Before(p.next)):
		p.woken = false
	case !p.woken && !now.Before(p.unwoken()):
	case p.woken:
		return p.next.Sub(now), false
	default:
		return p.unwoken().Sub(now), false
	}
	p.last, p.next = now, now.Add(p.interval)
	return 0, true
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
