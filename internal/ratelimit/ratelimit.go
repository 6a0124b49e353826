// Package ratelimit enforces request budgets with GCRA (the generic cell rate
// algorithm: one timestamp per key, no background refill). The budgets live
// in Redis, updated by one atomic script, so every API instance draws on the
// same budget. The script touches one key, so on a Redis Cluster it runs on
// the master owning that key's slot, as any single-key command does. While Redis is unavailable each instance falls back to its own
// in-process budgets: limits stay enforced (per instance), never switched off.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"golang.org/x/text/unicode/norm"

	"github.com/ordersvc/orders/internal/cache"
)

// Rate is a budget: Limit requests per Period, the whole Limit usable at once
// and refilled evenly (one request every Period/Limit).
type Rate struct {
	Limit  int
	Period time.Duration
}

// Result is the outcome of one request against one budget.
type Result struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // when not allowed: until one request fits again
	ResetAfter time.Duration // until the budget is full again
}

// Where budgets are kept, as /ready reports it.
const (
	ModeRedis     = "redis"
	ModeInProcess = "in-process fallback"
)

// gcra takes up to ARGV[3] requests from the budget at KEYS[1], as many as
// fit now, and at least one or none. The key holds the theoretical arrival
// time (TAT) in microseconds of Redis's clock, so that instances with skewed
// clocks still agree. ARGV: emission interval and burst window (Limit x
// interval), both in microseconds, and the requests wanted. Returns the
// requests granted (0 when refused), the remaining requests after them,
// retry-after and reset-after (microseconds).
var gcra = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local fit = math.floor((now + burst - tat) / interval)
if fit < 1 then
  return {0, 0, tat + interval - burst - now, tat - now}
end
local granted = math.min(wanted, fit)
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {granted, fit - granted, 0, new_tat - now}
`)

// Limiter takes requests from named budgets.
type Limiter struct {
	redis    *cache.Redis
	prefix   string
	local    *local
	held     *held
	logger   *slog.Logger
	fallback atomic.Bool
	draws    atomic.Int64 // round trips to Redis
}

// New returns a Limiter keeping its budgets under prefix in r.
func New(r *cache.Redis, prefix string, logger *slog.Logger) *Limiter {
	return &Limiter{
		redis: r, prefix: prefix + ":ratelimit:v1:", logger: logger,
		local: newLocal(time.Now), held: newHeld(),
	}
}

// Allow takes one request from the budget named bucket for subject.
//
// Two things spare Redis a round trip without ever letting through a
// request the shared budget would refuse. A refusal is remembered until its
// Retry-After: the budget's arrival time in Redis only grows, so nothing
// fits before then. And a budget that requests draw on in quick succession
// is taken from Redis several requests at a time (a lease, see holding),
// which this instance then spends within leaseTTL. A budget under
// 2 x leaseShare is never leased: small budgets stay exact across instances.
func (l *Limiter) Allow(ctx context.Context, bucket, subject string, rate Rate) Result {
	key := l.prefix + bucket + ":" + subject
	limit := max(rate.Limit, 1)
	// At least 1 µs: a budget of more than a million requests a second is
	// "unlimited" in practice, and a zero interval would divide by zero.
	interval := max(rate.Period.Microseconds()/int64(limit), 1)
	burst := interval * int64(limit)
	leased := limit / leaseShare
	if leased < 2 {
		if r, ok := l.held.refusal(key, time.Now(), rate.Limit); ok {
			return r
		}
		return l.draw(ctx, key, interval, burst, rate.Limit, 1, nil)
	}
	h := l.held.lease(key)
	counted, waited := false, false
	for {
		now := time.Now()
		h.mu.Lock()
		if !counted {
			h.arrive(now)
			counted = true
		}
		if r, ok := h.spend(now, rate.Limit); ok {
			h.mu.Unlock()
			return r
		}
		if waited && h.failed {
			// The draw this request waited for found Redis unavailable:
			// decide in process now rather than wait for another draw, so
			// that a hung Redis costs each request one call deadline at
			// most, not one per request queued before it.
			h.mu.Unlock()
			return l.local.allow(key, interval, burst, rate.Limit)
		}
		if h.fetching == nil {
			break // h stays locked: this request fetches
		}
		wait := h.fetching
		h.mu.Unlock()
		select {
		case <-wait:
			waited = true
		case <-ctx.Done():
			return l.local.allow(key, interval, burst, rate.Limit) // the caller is gone
		}
	}
	wanted := h.wanted(leased)
	done := make(chan struct{})
	h.fetching = done
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if h.fetching == done { // the draw ended unsettled: its caller left, or a panic
			h.fetching = nil
		}
		h.mu.Unlock()
		close(done)
	}()
	return l.draw(ctx, key, interval, burst, rate.Limit, wanted, h)
}

// draw takes up to wanted requests from the budget in Redis: one for this
// request and the rest for h. A refusal is remembered in h, or for key when
// h is nil. Without Redis the in-process budget decides, one request at a
// time.
func (l *Limiter) draw(ctx context.Context, key string, interval, burst int64, limit, wanted int, h *holding) Result {
	start := time.Now()
	l.draws.Add(1)
	var reply []int64
	err := l.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		var err error
		reply, err = gcra.Exec(ctx, c, []string{key}, []string{
			strconv.FormatInt(interval, 10), strconv.FormatInt(burst, 10), strconv.Itoa(wanted),
		}).AsIntSlice()
		return err
	})
	if err != nil && ctx.Err() != nil {
		// The caller went away, which says nothing about Redis; whoever
		// waited on this draw draws again.
		return l.local.allow(key, interval, burst, limit)
	}
	if err != nil || len(reply) != 4 {
		if h != nil {
			h.fail()
		}
		if l.fallback.CompareAndSwap(false, true) {
			l.logger.Warn("rate limiting falls back to in-process budgets (per instance) while redis is unavailable", slog.Any("error", err))
		}
		return l.local.allow(key, interval, burst, limit)
	}
	if l.fallback.CompareAndSwap(true, false) {
		l.logger.Warn("rate limiting uses the shared budgets in redis again")
	}
	g := grant{
		granted:    int(reply[0]),
		remaining:  int(reply[1]),
		retryAfter: time.Duration(reply[2]) * time.Microsecond,
		resetAfter: time.Duration(reply[3]) * time.Microsecond,
	}
	switch {
	case h != nil:
		h.settle(g, start)
	case g.granted == 0:
		l.held.refuse(key, g, start)
	}
	return result(limit, g.granted > 0, int64(g.remaining+max(g.granted-1, 0)), reply[2], reply[3])
}

// Subject turns a value that may carry personal data (an email) into a key
// part: a digest, so Redis never stores the address and odd bytes cannot
// break the key. Spellings that name one account (letter case, and the
// Unicode NFKC variants auth treats as one email, such as full-width
// letters) give one subject, so they share one budget.
func Subject(v string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(norm.NFKC.String(strings.TrimSpace(v)))))
	return hex.EncodeToString(sum[:16])
}

func result(limit int, allowed bool, remaining, retryUS, resetUS int64) Result {
	return Result{
		Allowed:    allowed,
		Limit:      limit,
		Remaining:  int(min(max(remaining, 0), int64(limit))),
		RetryAfter: time.Duration(retryUS) * time.Microsecond,
		ResetAfter: time.Duration(resetUS) * time.Microsecond,
	}
}
