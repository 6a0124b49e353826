package forwarder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

func TestPacerClaimsWhenWokenSpacedAndOnTheSafetyPoll(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	now := time.Now()
	_, ok := p.claim(now)
	require.True(t, ok, "the first claim is due at once: events may have been committed while no forwarder ran")
	wait, ok := p.claim(now.Add(ms))
	require.False(t, ok, "nothing committed since: no claim")
	require.Equal(t, 2*time.Second-ms, wait, "until the safety poll")

	p.Wake()
	wait, ok = p.claim(now.Add(5 * ms))
	require.False(t, ok)
	require.Equal(t, 15*ms, wait, "woken: the claim waits for its slot, one interval after the previous")
	_, ok = p.claim(now.Add(20 * ms))
	require.True(t, ok)
	_, ok = p.claim(now.Add(20 * ms))
	require.False(t, ok, "one claim per wake-up")

	_, ok = p.claim(now.Add(20*ms + 2*time.Second))
	require.True(t, ok, "nothing woke the process for a safety poll: a claim")
}

func TestPacerFirstEventAfterAQuietSpellIsClaimedAtOnce(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	now := time.Now()
	_, ok := p.claim(now)
	require.True(t, ok)
	p.Wake()
	_, ok = p.claim(now.Add(time.Second))
	require.True(t, ok, "the slot one interval after the last claim is long past")
}

func TestPacerFullBatchBringsAnotherForwarderAtOnce(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	_, ok := p.claim(time.Now())
	require.True(t, ok)
	require.NoError(t, p.await(t.Context(), 100, 100), "a full batch: the same forwarder claims again at once")
	p.Wake()
	_, ok = p.claim(time.Now())
	require.True(t, ok, "and a woken one joins it without waiting for the spaced slot")
}

func TestPacerManyWakeUpsLeaveOneSignal(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	_, ok := p.claim(time.Now())
	require.True(t, ok)
	for range 1000 {
		p.Wake()
	}
	require.Len(t, p.signal, 1, "a flood of notifications wakes one waiting forwarder")
}

func TestPacerAwaitReturnsOnWakeUp(t *testing.T) {
	t.Parallel()
	p := NewPacer(time.Millisecond, time.Hour)
	_, ok := p.claim(time.Now())
	require.True(t, ok)
	returned := make(chan error, 1)
	go func() { returned <- p.await(t.Context(), 0, 100) }()
	select {
	case err := <-returned:
		t.Fatalf("claimed with nothing committed (%v)", err)
	case <-time.After(100 * ms):
	}
	p.Wake()
	select {
	case err := <-returned:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("a wake-up did not bring a claim")
	}
}

func TestForwardersOfAPacerShareTheFullScans(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 3*time.Second)
	now := time.Now()
	require.True(t, p.fullScan(now), "the process's first claim is a full scan")
	require.False(t, p.fullScan(now.Add(10*ms)), "the next claims, by any forwarder, start from their floors")
	require.True(t, p.fullScan(now.Add(FullScanInterval)), "once due, the next claim by any forwarder scans from the oldest pending row")
	require.False(t, p.fullScan(now.Add(FullScanInterval+ms)), "and only that one")
}

func TestPacerFollowsAClaimFromAFloorWithAFullScan(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 3*time.Second)
	now := time.Now()
	_, ok := p.claim(now)
	require.True(t, ok)
	require.True(t, p.fullScan(now))
	wait, _ := p.claim(now.Add(ms))
	require.Equal(t, 3*time.Second-ms, wait, "after a full scan, nothing is owed: the safety poll")

	p.Wake()
	_, ok = p.claim(now.Add(100 * ms))
	require.True(t, ok)
	require.False(t, p.fullScan(now.Add(100*ms)), "woken before the full scan is due: a claim from the floor")
	wait, ok = p.claim(now.Add(200 * ms))
	require.False(t, ok)
	require.Equal(t, FullScanInterval-200*ms, wait, "a full scan follows, though nothing woke the process")
}
