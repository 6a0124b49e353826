package cache

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// breaker is a circuit breaker with a background half-open trial. Closed, it
// lets every call through and counts consecutive failures; the threshold-th
// opens it. Open, it refuses calls at once (they fall back to PostgreSQL or to
// in-process rate limits), and a goroutine probes Redis every cooldown; the
// first successful probe closes it. No request ever serves as the trial, so
// once an outage is detected no request waits on Redis. Each transition is
// logged once, not once per request.
type breaker struct {
	threshold int32
	cooldown  time.Duration
	probe     func() error
	logger    *slog.Logger

	open     atomic.Bool
	failures atomic.Int32

	mu       sync.Mutex // guards closed and the probes Add
	closed   bool
	done     chan struct{}
	probes   sync.WaitGroup // the probe and other loops started by spawn
	openedAt time.Time
}

func newBreaker(threshold int, cooldown time.Duration, r *Redis) *breaker {
	return &breaker{
		threshold: int32(min(threshold, 1<<30)), //nolint:gosec // bounded just above
		cooldown:  cooldown,
		probe:     r.probe,
		logger:    r.logger,
		done:      make(chan struct{}),
	}
}

func (b *breaker) allow() bool { return !b.open.Load() }

func (b *breaker) success() {
	if b.failures.Load() != 0 {
		b.failures.Store(0)
	}
}

func (b *breaker) failure(err error) {
	if b.failures.Add(1) >= b.threshold {
		b.trip(err)
	}
}

// trip opens the breaker (once) and starts the probe.
func (b *breaker) trip(err error) {
	if !b.open.CompareAndSwap(false, true) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.openedAt = time.Now()
	b.logger.Warn("redis unavailable: circuit open, serving from PostgreSQL and in-process rate limits",
		slog.Any("error", err), slog.Duration("probe_every", b.cooldown))
	b.spawnLocked(b.probeUntilUp)
}

// spawn runs fn in a goroutine that stop waits for; done closes on stop.
func (b *breaker) spawn(fn func(done <-chan struct{})) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.spawnLocked(fn)
}

func (b *breaker) spawnLocked(fn func(done <-chan struct{})) {
	if b.closed {
		return
	}
	b.probes.Add(1)
	go func() {
		defer b.probes.Done()
		fn(b.done)
	}()
}

func (b *breaker) probeUntilUp(done <-chan struct{}) {
	timer := time.NewTimer(b.cooldown)
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case <-timer.C:
		}
		err := b.probe()
		if err == nil {
			b.mu.Lock()
			down := time.Since(b.openedAt)
			b.failures.Store(0)
			b.open.Store(false)
			b.mu.Unlock()
			b.logger.Info("redis available again: circuit closed", slog.Duration("unavailable_for", down))
			return
		}
		b.logger.Debug("redis probe failed", slog.Any("error", err))
		timer.Reset(b.cooldown)
	}
}

// stop ends the probe, if one runs, and waits for it.
func (b *breaker) stop() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	b.mu.Unlock()
	b.probes.Wait()
}
