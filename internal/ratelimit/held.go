package ratelimit

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	// leaseShare: one draw takes at most 1/leaseShare of a budget, so a
	// budget under 2 x leaseShare is always taken one request at a time,
	// and whatever a lease leaves unspent is at most 1% of the budget.
	leaseShare = 100
	// leaseTTL is how long an instance may spend what it drew. A request
	// spent later than it was drawn shifts at most leaseTTL's share of the
	// budget in time.
	leaseTTL = 50 * time.Millisecond
)

// grant is Redis's answer to one draw.
type grant struct {
	granted    int // requests taken, 0 when refused
	remaining  int // requests left in the budget after them
	retryAfter time.Duration
	resetAfter time.Duration
}

// holding is what this instance knows of one budget between draws.
type holding struct {
	mu sync.Mutex
	// tokens are requests drawn from Redis and not yet spent, until expires.
	tokens    int
	expires   time.Time
	remaining int // left in Redis after the last draw
	// resetAt: when the budget is full again; refusedUntil: when a request
	// fits again after a refusal.
	resetAt, refusedUntil time.Time
	// The requests seen in the current window of leaseTTL (from window) and
	// in the one before: a draw takes as many as the busier of the two (up
	// to 1/leaseShare of the budget), enough for the next leaseTTL at the
	// rate requests come in.
	window         time.Time
	seen, seenLast int
	// fetching is closed when the draw under way ends; failed: the latest
	// draw found Redis unavailable.
	fetching chan struct{}
	failed   bool
}

// arrive counts a request at now.
func (h *holding) arrive(now time.Time) {
	if since := now.Sub(h.window); since >= leaseTTL {
		h.seenLast = 0
		if since < 2*leaseTTL {
			h.seenLast = h.seen
		}
		h.window, h.seen = now, 0
	}
	h.seen++
}

// wanted is how many requests the next draw takes.
func (h *holding) wanted(most int) int { return max(min(max(h.seen, h.seenLast), most), 1) }

// spend answers from what is held: a remembered refusal, or a held request.
func (h *holding) spend(now time.Time, limit int) (Result, bool) {
	if now.Before(h.refusedUntil) {
		return refusedAt(now, limit, h.refusedUntil, h.resetAt), true
	}
	if h.tokens > 0 && now.Before(h.expires) {
		h.tokens--
		return Result{
			Allowed:    true,
			Limit:      limit,
			Remaining:  min(h.remaining+h.tokens, limit),
			ResetAfter: max(h.resetAt.Sub(now), 0),
		}, true
	}
	return Result{}, false
}

// settle records Redis's answer to a draw that began at start.
func (h *holding) settle(g grant, start time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fetching, h.failed = nil, false
	h.tokens = 0
	if g.granted == 0 && g.retryAfter > 0 {
		h.refusedUntil = start.Add(g.retryAfter)
	} else if g.granted > 1 {
		h.tokens, h.expires = g.granted-1, start.Add(leaseTTL)
	}
	h.remaining = g.remaining
	h.resetAt = start.Add(g.resetAfter)
}

// fail records a draw that found Redis unavailable. What was held is kept
// until it expires: it was drawn from the shared budget.
func (h *holding) fail() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fetching, h.failed = nil, true
}

func refusedAt(now time.Time, limit int, until, resetAt time.Time) Result {
	return Result{Limit: limit, RetryAfter: until.Sub(now), ResetAfter: max(resetAt.Sub(now), 0)}
}

// held maps budget keys to their holdings. Holdings whose lease and refusal
// have both run out hold nothing and are swept, so memory follows the
// budgets in use now.
type held struct {
	m     sync.Map // key -> *holding
	calls atomic.Uint64
}

func newHeld() *held { return &held{} }

// lease returns key's holding, made on first use.
func (t *held) lease(key string) *holding {
	t.sweepNow()
	if h, ok := t.m.Load(key); ok {
		return h.(*holding)
	}
	h, _ := t.m.LoadOrStore(key, &holding{})
	return h.(*holding)
}

// refusal answers a remembered refusal of a budget drawn on one request at a
// time.
func (t *held) refusal(key string, now time.Time, limit int) (Result, bool) {
	t.sweepNow()
	v, ok := t.m.Load(key)
	if !ok {
		return Result{}, false
	}
	h := v.(*holding)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.spend(now, limit) // such a holding holds no requests, only refusals
}

// refuse remembers a refusal of a budget drawn on one request at a time.
func (t *held) refuse(key string, g grant, start time.Time) {
	v, _ := t.m.LoadOrStore(key, &holding{})
	v.(*holding).settle(g, start)
}

// sweepNow drops, every pruneEvery calls, the holdings that hold nothing.
func (t *held) sweepNow() {
	if t.calls.Add(1)%pruneEvery != 0 {
		return
	}
	now := time.Now()
	t.m.Range(func(k, v any) bool {
		h := v.(*holding)
		h.mu.Lock()
		idle := h.fetching == nil && !now.Before(h.expires) && !now.Before(h.refusedUntil)
		h.mu.Unlock()
		if idle {
			t.m.CompareAndDelete(k, v)
		}
		return true
	})
}
