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

// gcra takes one request from the budget at KEYS[1]. The key holds the
// theoretical arrival time (TAT) in microseconds of Redis's clock, so that
// instances with skewed clocks still agree. ARGV: emission interval and burst
// window (Limit x interval), both in microseconds. Returns allowed (0/1),
// remaining, retry-after and reset-after (microseconds).
var gcra = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst
if now < allow_at then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, math.floor((now - allow_at) / interval), 0, new_tat - now}
`)

// Limiter takes requests from named budgets.
type Limiter struct {
	redis    *cache.Redis
	prefix   string
	local    *local
	logger   *slog.Logger
	fallback atomic.Bool
}

// New returns a Limiter keeping its budgets under prefix in r.
func New(r *cache.Redis, prefix string, logger *slog.Logger) *Limiter {
	return &Limiter{redis: r, prefix: prefix + ":ratelimit:v1:", local: newLocal(time.Now), logger: logger}
}

// Allow takes one request from the budget named bucket for subject.
func (l *Limiter) Allow(ctx context.Context, bucket, subject string, rate Rate) Result {
	key := l.prefix + bucket + ":" + subject
	// At least 1 µs: a budget of more than a million requests a second is
	// "unlimited" in practice, and a zero interval would divide by zero.
	interval := max(rate.Period.Microseconds()/int64(max(rate.Limit, 1)), 1)
	burst := interval * int64(max(rate.Limit, 1))
	var reply []int64
	err := l.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		var err error
		reply, err = gcra.Exec(ctx, c, []string{key}, []string{strconv.FormatInt(interval, 10), strconv.FormatInt(burst, 10)}).AsIntSlice()
		return err
	})
	if err != nil || len(reply) != 4 {
		if l.fallback.CompareAndSwap(false, true) {
			l.logger.Warn("rate limiting falls back to in-process budgets (per instance) while redis is unavailable", slog.Any("error", err))
		}
		return l.local.allow(key, interval, burst, rate.Limit)
	}
	if l.fallback.CompareAndSwap(true, false) {
		l.logger.Warn("rate limiting uses the shared budgets in redis again")
	}
	return result(rate.Limit, reply[0] == 1, reply[1], reply[2], reply[3])
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
