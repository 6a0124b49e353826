package ratelimit

import (
	"sync"
	"time"
)

// pruneEvery is how many calls pass between sweeps of expired keys.
const pruneEvery = 4096

// local is the in-process fallback: the same GCRA as the Redis script, over
// a map. A key whose TAT has passed holds no information (its budget is
// full), so sweeps drop it and memory stays proportional to active clients.
type local struct {
	now   func() time.Time
	mu    sync.Mutex
	tats  map[string]int64 // key -> theoretical arrival time, µs since the epoch
	calls int
}

func newLocal(now func() time.Time) *local {
	return &local{now: now, tats: map[string]int64{}}
}

func (l *local) allow(key string, interval, burst int64, limit int) Result {
	now := l.now().UnixMicro()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls++; l.calls%pruneEvery == 0 {
		for k, tat := range l.tats {
			if tat <= now {
				delete(l.tats, k)
			}
		}
	}
	tat := max(l.tats[key], now)
	newTAT := tat + interval
	allowAt := newTAT - burst
	if now < allowAt {
		return result(limit, false, 0, allowAt-now, tat-now)
	}
	l.tats[key] = newTAT
	return result(limit, true, (now-allowAt)/interval, 0, newTAT-now)
}
