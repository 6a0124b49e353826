package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// versionWidth is the width of the zero-padded decimal version that prefixes
// every stored value: equal widths make Lua's string comparison numeric.
const versionWidth = 20

// maxPending bounds the writes kept for repair while Redis cannot take them.
const maxPending = 10_000

// repairEvery is how often writes that failed are retried.
const repairEvery = 100 * time.Millisecond

// leaseTTL bounds how long a reader may take between its miss and its fill.
const leaseTTL = 10 * time.Second

// floorMargin keeps a key's version floor a little longer than its value.
const floorMargin = time.Minute

// A reader that loaded a row before a writer's commit must never cache it
// after the writer has cached the new one, even if the writer's value has
// left Redis by then (expired, evicted, purged): a version compare against
// the value alone then has nothing to compare with. So every cached value has
// a companion hash, <key>:meta, holding:
//   - floor: the highest version a writer has cached, kept a minute longer
//     than the value. Fills and puts older than the floor are refused.
//   - lease: the token of the latest reader that missed. A fill needs it, so
//     a fill whose miss predates the loss of the meta (eviction, a purge)
//     is refused too: without a floor to check, nothing stale can land.
// Values carry their version as a 20-digit prefix as well: equal widths make
// Lua's string comparison numeric.

// takeLease records a reader's miss. KEYS: meta. ARGV: token, lease ms.
var takeLease = rueidis.NewLuaScript(`
redis.call('HSET', KEYS[1], 'lease', ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// fill caches what a reader loaded, if its lease is still the current one
// and nothing newer is known. KEYS: value, meta. ARGV: token, version,
// payload, ttl ms.
var fill = rueidis.NewLuaScript(`
if redis.call('HGET', KEYS[2], 'lease') ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[2], 'lease')
local floor = redis.call('HGET', KEYS[2], 'floor')
if floor and floor > ARGV[2] then
  return 0
end
local current = redis.call('GETRANGE', KEYS[1], 0, 19)
if current ~= '' and current > ARGV[2] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2] .. ARGV[3], 'PX', ARGV[4])
return 1
`)

// put caches what a writer committed, unless a newer version was cached,
// and raises the floor. Equal versions overwrite (same state, fresh TTL).
// KEYS: value, meta. ARGV: version, payload, ttl ms, meta ttl ms.
var put = rueidis.NewLuaScript(`
local floor = redis.call('HGET', KEYS[2], 'floor')
if floor and floor > ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], 'floor', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local current = redis.call('GETRANGE', KEYS[1], 0, 19)
if current ~= '' and current > ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2], 'PX', ARGV[3])
return 1
`)

// Store keeps versioned values under a key prefix. Writers (Put) are the
// authority: a Put that Redis does not take is kept and retried, and until it
// lands, reads of that key bypass Redis and fills of it are dropped, so this
// instance never serves or re-caches what the failed Put replaced. Readers
// fill after a miss (Get then Fill) under a lease, best effort.
//
// Reads always ask Redis, one round trip each. Not rueidis's client-side
// cache: its invalidations reach the other instances asynchronously, so a
// read on one instance right after a write on another would return the old
// value (an old status after a PATCH; docs/decisions.md).
type Store struct {
	redis  *Redis
	prefix string

	tokenPrefix string // unique per Store: leases of instances never collide
	tokens      atomic.Uint64

	mu       sync.Mutex
	pending  map[string]entry
	npending atomic.Int32
	// overflowed: more failed writes than maxPending, so some were not kept.
	// Every read bypasses Redis until the prefix has been purged.
	overflowed atomic.Bool

	// onGet, when set, learns the outcome of every Get (WithGetObserver).
	onGet func(outcome string)
}

// StoreOption configures a Store in NewStore.
type StoreOption func(*Store)

// WithGetObserver has observe learn the outcome of every Get: "hit", "miss"
// (a lease was taken) or "fallback" (Redis not asked or failing: the caller
// reads PostgreSQL).
func WithGetObserver(observe func(outcome string)) StoreOption {
	return func(s *Store) { s.onGet = observe }
}

type entry struct {
	version string
	value   []byte
	ttl     time.Duration
}

// NewStore returns a Store whose keys all start with prefix + ":cache:", so
// that a purge never touches the rate-limit budgets kept under the same prefix.
func NewStore(r *Redis, prefix string, opts ...StoreOption) *Store {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s := &Store{redis: r, prefix: prefix + ":cache:", tokenPrefix: hex.EncodeToString(b) + "-", pending: map[string]entry{}}
	for _, opt := range opts {
		opt(s)
	}
	r.breaker.spawn(s.repairLoop)
	return s
}

// Get returns the value stored under key. On a miss it also returns a lease
// for Fill ("" when the miss could not be recorded: then there is no fill).
// Any failure is a miss: the caller reads its source of truth instead.
func (s *Store) Get(ctx context.Context, key string) (value []byte, lease string, hit bool) {
	value, lease, hit = s.get(ctx, key)
	if s.onGet != nil {
		switch {
		case hit:
			s.onGet("hit")
		case lease != "":
			s.onGet("miss")
		default:
			s.onGet("fallback")
		}
	}
	return value, lease, hit
}

func (s *Store) get(ctx context.Context, key string) (value []byte, lease string, hit bool) {
	if !s.redis.Available() || s.bypass(key) {
		return nil, "", false
	}
	var v []byte
	err := s.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		var err error
		value, _ := s.keys(c, key)
		v, err = c.Do(ctx, c.B().Get().Key(value).Build()).AsBytes()
		return err
	})
	switch {
	case err == nil && len(v) >= versionWidth:
		return v[versionWidth:], "", true
	case err != nil && !rueidis.IsRedisNil(err):
		return nil, "", false
	}
	token := s.tokenPrefix + strconv.FormatUint(s.tokens.Add(1), 36)
	err = s.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		_, meta := s.keys(c, key)
		return takeLease.Exec(ctx, c, []string{meta}, []string{token, strconv.FormatInt(leaseTTL.Milliseconds(), 10)}).Error()
	})
	if err != nil {
		return nil, "", false
	}
	return nil, token, false
}

// Fill caches what a reader loaded after the miss that gave it lease. It
// lands only if nothing newer has been cached and the key's meta has not
// been lost since the miss.
// value is only called when the fill can happen: encoding an order for a
// Redis that is down would be wasted work on every read.
func (s *Store) Fill(ctx context.Context, key, lease string, version int64, ttl time.Duration, value func() ([]byte, error)) {
	if lease == "" || !s.redis.Available() || s.bypass(key) {
		return
	}
	b, err := value()
	if err != nil {
		return
	}
	_ = s.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error { // best effort
		value, meta := s.keys(c, key)
		return fill.Exec(ctx, c, []string{value, meta},
			[]string{lease, formatVersion(version), rueidis.BinaryString(b), milliseconds(ttl)}).Error()
	})
}

// Put stores a writer's value right after its commit. When Redis does not
// take it, it is kept and retried until it does.
func (s *Store) Put(ctx context.Context, key string, version int64, value []byte, ttl time.Duration) {
	e := entry{version: formatVersion(version), value: value, ttl: ttl}
	if err := s.set(ctx, key, e); err != nil {
		s.keep(key, e)
		return
	}
	s.settled(key, e.version)
}

func (s *Store) set(ctx context.Context, key string, e entry) error {
	return s.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		value, meta := s.keys(c, key)
		return put.Exec(ctx, c, []string{value, meta},
			[]string{e.version, rueidis.BinaryString(e.value), milliseconds(e.ttl), milliseconds(e.ttl + floorMargin)}).Error()
	})
}

// keys names the value and the meta of key. A script touches both, so on a
// Redis Cluster they must share a hash slot: there the key sits in a hash
// tag, {key}, which also makes the two land on one master. One Redis and
// Sentinel keep the names they have always had, so a deploy of this code on
// them finds the entries (and the floors) the previous version wrote. A
// cluster is always a fresh keyspace, so its names need no compatibility.
func (s *Store) keys(c rueidis.Client, key string) (value, meta string) {
	if c.Mode() == rueidis.ClientModeCluster {
		key = "{" + key + "}"
	}
	return s.prefix + key, s.prefix + key + ":meta"
}

func milliseconds(d time.Duration) string { return strconv.FormatInt(max(d.Milliseconds(), 1), 10) }

func (s *Store) bypass(key string) bool {
	if s.overflowed.Load() {
		return true
	}
	if s.npending.Load() == 0 {
		return false
	}
	s.mu.Lock()
	_, ok := s.pending[key]
	s.mu.Unlock()
	return ok
}

// keep records a write for repair, keeping the newest version per key.
func (s *Store) keep(key string, e entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.pending[key]; ok && old.version > e.version {
		return
	}
	if _, ok := s.pending[key]; !ok && len(s.pending) >= maxPending {
		s.overflowed.Store(true)
		return
	}
	s.pending[key] = e
	s.npending.Store(int32(len(s.pending))) //nolint:gosec // at most maxPending
}

// settled forgets a kept write once a write at least as new has landed.
func (s *Store) settled(key, version string) {
	if s.npending.Load() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.pending[key]; ok && old.version <= version {
		delete(s.pending, key)
		s.npending.Store(int32(len(s.pending))) //nolint:gosec // at most maxPending
	}
}

func (s *Store) repairLoop(done <-chan struct{}) {
	ticker := time.NewTicker(repairEvery)
	defer ticker.Stop()
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
		}
		if (s.npending.Load() == 0 && !s.overflowed.Load()) || !s.redis.Available() {
			continue
		}
		s.repair()
	}
}

// repair retries the kept writes, and after an overflow deletes every key
// under the prefix: the lost writes may have left stale values there.
func (s *Store) repair() {
	ctx := context.Background()
	if s.overflowed.Load() {
		if err := s.purge(ctx); err != nil {
			s.redis.logger.Warn("cache purge after lost writes failed; retrying", slog.Any("error", err))
			return
		}
		s.mu.Lock()
		s.pending = map[string]entry{}
		s.npending.Store(0)
		s.overflowed.Store(false)
		s.mu.Unlock()
		s.redis.logger.Info("cache purged after more failed writes than could be kept")
		return
	}
	s.mu.Lock()
	batch := make(map[string]entry, len(s.pending))
	for k, e := range s.pending {
		batch[k] = e
	}
	s.mu.Unlock()
	for key, e := range batch {
		if err := s.set(ctx, key, e); err != nil {
			return // try again on the next tick
		}
		s.settled(key, e.version)
	}
}

// purge deletes every key under the prefix, SCAN by SCAN on every master
// (a SCAN sees only the node it runs on). Keys are unlinked one per command,
// pipelined: on a cluster, a command naming keys of several slots is refused.
func (s *Store) purge(ctx context.Context) error {
	pattern := globEscape(s.prefix) + "*"
	masters, err := s.redis.Masters(ctx)
	if err != nil {
		return fmt.Errorf("purge %s: %w", pattern, err)
	}
	for _, node := range masters {
		if err := s.purgeNode(ctx, node, pattern); err != nil {
			return fmt.Errorf("purge %s: %w", pattern, err)
		}
	}
	return nil
}

func (s *Store) purgeNode(ctx context.Context, node rueidis.Client, pattern string) error {
	var cursor uint64
	for {
		var entry rueidis.ScanEntry
		err := s.redis.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
			var err error
			entry, err = node.Do(ctx, node.B().Scan().Cursor(cursor).Match(pattern).Count(1000).Build()).AsScanEntry()
			if err != nil || len(entry.Elements) == 0 {
				return err
			}
			unlinks := make(rueidis.Commands, len(entry.Elements))
			for i, k := range entry.Elements {
				unlinks[i] = c.B().Unlink().Key(k).Build()
			}
			for _, r := range c.DoMulti(ctx, unlinks...) {
				if err := r.Error(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if cursor = entry.Cursor; cursor == 0 {
			return nil
		}
	}
}

func formatVersion(v int64) string {
	s := strconv.FormatInt(max(v, 0), 10)
	return strings.Repeat("0", versionWidth-len(s)) + s
}

func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`*?[]\`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
