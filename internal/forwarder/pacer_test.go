package forwarder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

func TestPacerSpacesPartialClaimsOfAllForwarders(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 160*ms)
	now := time.Now()
	// Three forwarders each forwarded a partial batch at the same moment:
	// their next claims are spread out, one per interval.
	require.Equal(t, []time.Duration{0, 20, 40}, scale([]time.Duration{p.wait(3, 100, now), p.wait(1, 100, now), p.wait(7, 100, now)}))
	// A full batch means more is waiting: claim again at once.
	require.Zero(t, p.wait(100, 100, now))
	// The next partial claim queues behind the ones planned.
	require.Equal(t, 60*ms, p.wait(5, 100, now))
}

func TestPacerDoublesWhileIdleAndComesBackOnEvents(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 160*ms)
	now := time.Now()
	var waits []time.Duration
	for range 6 { // one forwarder finding nothing, claims taking no time
		w := p.wait(0, 100, now)
		waits = append(waits, w)
		now = now.Add(w)
	}
	require.Equal(t, []time.Duration{20, 40, 80, 160, 160, 160}, scale(waits))
	// Other forwarders went idle too: spaced claims are planned far ahead.
	for range 7 {
		p.wait(0, 100, now)
	}
	// Events again: the next claim is at most one interval away.
	require.Equal(t, 20*ms, p.wait(1, 100, now))
	require.Equal(t, 20*ms, p.wait(0, 100, now.Add(20*ms)), "and an empty claim starts doubling from interval again")
}

func scale(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / ms
	}
	return out
}

func TestForwardersOfAPacerShareTheFullScans(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 160*ms)
	now := time.Now()
	require.True(t, p.scans.due(now), "the process's first claim is a full scan")
	require.False(t, p.scans.due(now.Add(10*ms)), "the next claims, by any forwarder, start from their floors")
	require.True(t, p.scans.due(now.Add(FullScanInterval)), "once due, the next claim by any forwarder scans from the oldest pending row")
	require.False(t, p.scans.due(now.Add(FullScanInterval+ms)), "and only that one")
}
