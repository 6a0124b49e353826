package outbox

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

func TestPacerSpacesPartialClaimsOfAllForwarders(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 160*ms, time.Second)
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
	p := NewPacer(20*ms, 160*ms, time.Second)
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

func TestForwarderBackoffReadsTheClaimSize(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 160*ms, time.Second)
	adapter, backoff := p.Forwarder(2)
	s := adapter.(schema)
	_, err := s.SelectQuery(wsql.SelectQueryParams{Topic: Topic})
	require.NoError(t, err)
	f := s.floor
	f.saw(10)
	f.saw(11)
	log := watermill.NopLogger{}
	require.Zero(t, backoff.HandleError(log, false, nil), "a full claim of 2 claims again at once")
	_, _ = s.SelectQuery(wsql.SelectQueryParams{Topic: Topic})
	f.saw(12)
	require.Equal(t, time.Duration(0), backoff.HandleError(log, false, nil), "the first partial claim takes the free slot")
	_, _ = s.SelectQuery(wsql.SelectQueryParams{Topic: Topic})
	f.saw(13)
	require.InDelta(t, float64(20*ms), float64(backoff.HandleError(log, false, nil)), float64(5*ms), "the next one waits its turn")
	require.Equal(t, time.Second, backoff.HandleError(log, false, errors.New("connection refused")), "a failed claim waits the retry interval")
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
	p := NewPacer(20*ms, 160*ms, time.Second)
	first, _ := p.Forwarder(10)
	second, _ := p.Forwarder(10)
	floors := []*floor{first.(schema).floor, second.(schema).floor}
	for i, f := range floors {
		where, _ := f.where(wsql.GenerateWhereClauseParams{})
		require.Empty(t, where, "a forwarder's first claim has no floor")
		f.saw(int64(100 + i))
	}
	claim := func(i int) string {
		where, args := floors[i].where(wsql.GenerateWhereClauseParams{})
		if where != "" {
			require.Equal(t, []any{int64(100 + i)}, args, "forwarder %d claims from its own floor", i)
		}
		return where
	}
	require.Empty(t, claim(0), "the process's first full scan is due")
	require.Equal(t, `"offset" >= $1`, claim(1), "the other forwarder claims from its floor")
	require.Equal(t, `"offset" >= $1`, claim(0), "and so does the first, until the next scan is due")
	p.scans.mu.Lock()
	p.scans.last = time.Now().Add(-FullScanInterval)
	p.scans.mu.Unlock()
	require.Empty(t, claim(1), "once due, the next claim by any forwarder scans from the oldest pending row")
	require.NotEmpty(t, claim(0), "and only that one")
}
