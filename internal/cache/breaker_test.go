package cache

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testlog"
)

const (
	logOpen   = "redis unavailable: circuit open, serving from PostgreSQL and in-process rate limits"
	logClosed = "redis available again: circuit closed"
)

// newTestBreaker returns a breaker whose probe (the check's PING and the
// probes while open) answers with *probeErr and counts its calls.
func newTestBreaker(t *testing.T, threshold int, probeErr *atomic.Pointer[error]) (*breaker, *testlog.Sink, *atomic.Int32) {
	t.Helper()
	logs := testlog.NewSink()
	var probes atomic.Int32
	b := &breaker{
		threshold: int32(threshold), //nolint:gosec // small test values
		cooldown:  10 * time.Millisecond,
		logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		done:      make(chan struct{}),
		probe: func() error {
			probes.Add(1)
			if p := probeErr.Load(); p != nil {
				return *p
			}
			return nil
		},
	}
	t.Cleanup(b.stop)
	return b, logs, &probes
}

// settled waits until no check runs.
func settled(b *breaker) bool { return !b.checking.Load() }

// TestBreakerRule pins when the breaker opens: consecutive failures up to
// the threshold only make it check Redis with one PING; it opens when that
// PING fails too, and stays closed, its count reset, when Redis answers.
func TestBreakerRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		calls      []bool // true: success
		redisDown  bool   // the check's PING fails
		wantChecks int32
		wantOpen   bool
	}{
		{"no calls", nil, true, 0, false},
		{"two failures", []bool{false, false}, true, 0, false},
		{"a success resets the count", []bool{false, false, true, false, false}, true, 0, false},
		{"three failures, redis down", []bool{false, false, false}, true, 1, true},
		{"three after a success, redis down", []bool{false, true, false, false, false}, true, 1, true},
		{"three failures, redis answers: a slow machine", []bool{false, false, false}, false, 1, false},
		{"many failures, redis answers", []bool{false, false, false, false, false, false, false, false}, false, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var probeErr atomic.Pointer[error]
			if tt.redisDown {
				down := errors.New("down")
				probeErr.Store(&down) // stays open once opened
			}
			b, logs, probes := newTestBreaker(t, 3, &probeErr)
			for _, ok := range tt.calls {
				if ok {
					b.success()
				} else {
					b.failure(errors.New("context deadline exceeded"))
				}
			}
			require.Eventually(t, func() bool { return settled(b) }, 5*time.Second, time.Millisecond)
			require.Equal(t, tt.wantOpen, !b.allow())
			if tt.wantOpen {
				require.Len(t, logs.Find(logOpen), 1)
				require.EqualValues(t, 1, b.openings.Load())
				return
			}
			require.Equal(t, tt.wantChecks, probes.Load(), "checks made")
			require.Equal(t, uint64(tt.wantChecks), b.checksAnswered.Load())
			require.Empty(t, logs.Find(logOpen))
			if tt.wantChecks > 0 {
				require.Zero(t, b.failures.Load(), "an answered check resets the count")
			}
		})
	}
}

// TestBreakerChecksOneAtATime: under load, many calls fail at once; they
// cause one check, not one each.
func TestBreakerChecksOneAtATime(t *testing.T) {
	t.Parallel()
	var probeErr atomic.Pointer[error]
	b, _, probes := newTestBreaker(t, 3, &probeErr)
	release := make(chan struct{})
	b.probe = func() error { probes.Add(1); <-release; return nil }
	for range 100 {
		b.failure(errors.New("context deadline exceeded"))
	}
	close(release)
	require.Eventually(t, func() bool { return settled(b) }, 5*time.Second, time.Millisecond)
	require.EqualValues(t, 1, probes.Load())
	require.True(t, b.allow())
}

func TestBreakerProbesAndClosesLoggingEachChangeOnceAtWarn(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	var probeErr atomic.Pointer[error]
	probeErr.Store(&down)
	b, logs, _ := newTestBreaker(t, 2, &probeErr)

	for range 50 { // far more failures than the threshold, as under load
		b.failure(down)
	}
	require.Eventually(t, func() bool { return !b.allow() }, 5*time.Second, time.Millisecond)
	// Several probe rounds fail while Redis stays down.
	require.Eventually(t, func() bool { return len(logs.Find("redis probe failed")) >= 3 }, 5*time.Second, 5*time.Millisecond)
	require.False(t, b.allow(), "failed probes keep the breaker open")

	probeErr.Store(nil) // Redis is back
	require.Eventually(t, b.allow, 5*time.Second, 5*time.Millisecond)
	_, ok := logs.WaitFor(logClosed, time.Second)
	require.True(t, ok)

	opened, closed := logs.Find(logOpen), logs.Find(logClosed)
	require.Len(t, opened, 1, "opening is logged once")
	require.Len(t, closed, 1, "closing is logged once")
	require.Equal(t, "WARN", opened[0]["level"])
	require.Equal(t, opened[0]["level"], closed[0]["level"], "both changes at the same level: at LOG_LEVEL=warn an open breaker must be seen closing")

	// After recovery it takes the threshold again to check.
	b.failure(down)
	require.True(t, settled(b))
	require.True(t, b.allow())
}

func TestBreakerStopEndsTheProbe(t *testing.T) {
	t.Parallel()
	down := errors.New("down")
	var probeErr atomic.Pointer[error]
	probeErr.Store(&down)
	b, _, _ := newTestBreaker(t, 1, &probeErr)
	b.failure(down)
	require.Eventually(t, func() bool { return !b.allow() }, 5*time.Second, time.Millisecond)
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end the probe")
	}
	b.trip(down)    // after stop: no new goroutine, no panic
	b.failure(down) // nor a check
}
