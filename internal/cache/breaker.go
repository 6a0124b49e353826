package cache

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// breaker is a circuit breaker that opens on Redis faults, not on a slow
// machine. Closed, it lets every call through and counts consecutive
// failures. Reaching the threshold only raises a suspicion: a PING with the
// probe deadline, far longer than a call's, decides. A healthy Redis on a
// starved machine answers it (calls miss their 50 ms when another process
// takes both cores, because this process is not scheduled, not because
// Redis is slow), and the breaker stays closed; a dead or hung Redis does
// not, and the breaker opens. Open, it refuses calls at once (they fall back
// to PostgreSQL or to in-process rate limits), and a goroutine probes Redis
// every cooldown; the first answer closes it. No request ever waits on a
// check or a probe. Opening and closing are each logged once, at warn.
type breaker struct {
	threshold int32
	cooldown  time.Duration
	probe     func() error
	logger    *slog.Logger

	open     atomic.Bool
	failures atomic.Int32
	checking atomic.Bool // a suspicion is being checked
	// Counters for the metrics: checks by outcome, and openings.
	checksAnswered, checksFailed, openings atomic.Uint64

	mu       sync.Mutex // guards closed, openedAt and the probes Add
	closed   bool
	done     chan struct{}
	probes   sync.WaitGroup // checks, the probe and other loops started by spawn
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
	if b.failures.Add(1) >= b.threshold && b.checking.CompareAndSwap(false, true) {
		b.spawn(func(<-chan struct{}) { b.check(err) })
	}
}

// check settles a suspicion with one PING under the probe deadline.
func (b *breaker) check(cause error) {
	defer b.checking.Store(false)
	if err := b.probe(); err != nil {
		b.checksFailed.Add(1)
		b.trip(err)
		return
	}
	b.checksAnswered.Add(1)
	b.failures.Store(0)
	b.logger.Debug("redis calls failed but redis answers: slow here, not down; circuit stays closed", slog.Any("error", cause))
}

// trip opens the breaker (once) and starts the probe.
func (b *breaker) trip(err error) {
	if !b.open.CompareAndSwap(false, true) {
		return
	}
	b.openings.Add(1)
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
			b.logger.Warn("redis available again: circuit closed", slog.Duration("unavailable_for", down))
			return
		}
		b.logger.Debug("redis probe failed", slog.Any("error", err))
		timer.Reset(b.cooldown)
	}
}

// stop ends the checks and the probe, if any run, and waits for them.
func (b *breaker) stop() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.done)
	}
	b.mu.Unlock()
	b.probes.Wait()
}
