package cache

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testlog"
)

// newTestBreaker returns a breaker whose probe answers with *probeErr.
func newTestBreaker(t *testing.T, threshold int, probeErr *atomic.Pointer[error]) (*breaker, *testlog.Sink) {
	t.Helper()
	logs := testlog.NewSink()
	b := &breaker{
		threshold: int32(threshold), //nolint:gosec // small test values
		cooldown:  10 * time.Millisecond,
		logger:    slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		done:      make(chan struct{}),
		probe: func() error {
			if p := probeErr.Load(); p != nil {
				return *p
			}
			return nil
		},
	}
	t.Cleanup(b.stop)
	return b, logs
}

func TestBreakerOpensAfterConsecutiveFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		calls    []bool // true: success
		wantOpen bool
	}{
		{"no calls", nil, false},
		{"two failures", []bool{false, false}, false},
		{"three failures", []bool{false, false, false}, true},
		{"a success resets the count", []bool{false, false, true, false, false}, false},
		{"three after a success", []bool{false, true, false, false, false}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			down := errors.New("down")
			var probeErr atomic.Pointer[error]
			probeErr.Store(&down) // stays open once opened
			b, _ := newTestBreaker(t, 3, &probeErr)
			for _, ok := range tt.calls {
				if ok {
					b.success()
				} else {
					b.failure(down)
				}
			}
			assert.Equal(t, tt.wantOpen, !b.allow())
		})
	}
}

func TestBreakerProbesAndClosesLoggingEachChangeOnce(t *testing.T) {
	t.Parallel()
	down := errors.New("connection refused")
	var probeErr atomic.Pointer[error]
	probeErr.Store(&down)
	b, logs := newTestBreaker(t, 2, &probeErr)

	for range 50 { // far more failures than the threshold, as under load
		b.failure(down)
	}
	require.False(t, b.allow())
	// Several probe rounds fail while Redis stays down.
	require.Eventually(t, func() bool { return len(logs.Find("redis probe failed")) >= 3 }, 5*time.Second, 5*time.Millisecond)
	require.False(t, b.allow(), "failed probes keep the breaker open")

	probeErr.Store(nil) // Redis is back
	require.Eventually(t, b.allow, 5*time.Second, 5*time.Millisecond)
	_, ok := logs.WaitFor("redis available again: circuit closed", time.Second)
	require.True(t, ok)

	assert.Len(t, logs.Find("redis unavailable: circuit open, serving from PostgreSQL and in-process rate limits"), 1, "opening is logged once")
	assert.Len(t, logs.Find("redis available again: circuit closed"), 1, "closing is logged once")

	// After recovery it takes the threshold again to open.
	b.failure(down)
	assert.True(t, b.allow())
}

func TestBreakerStopEndsTheProbe(t *testing.T) {
	t.Parallel()
	down := errors.New("down")
	var probeErr atomic.Pointer[error]
	probeErr.Store(&down)
	b, _ := newTestBreaker(t, 1, &probeErr)
	b.failure(down)
	require.False(t, b.allow())
	stopped := make(chan struct{})
	go func() { b.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end the probe")
	}
	b.trip(down) // after stop: no new goroutine, no panic
}
