package forwarder

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const ms = time.Millisecond

// claimNow is p.claim of a claim that, if granted, finishes at once.
func claimNow(p *Pacer, now time.Time) grant {
	g := p.claim(now)
	if g.ok {
		p.finished()
	}
	return g
}

// claimOf is claimNow as (wait, ok).
func claimOf(p *Pacer, now time.Time) (time.Duration, bool) {
	g := claimNow(p, now)
	return g.wait, g.ok
}

func TestPacerClaimsWhenWokenSpacedAndOnTheSafetyPoll(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	now := time.Now()
	_, ok := claimOf(p, now)
	require.True(t, ok, "the first claim is due at once: events may have been committed while no forwarder ran")
	wait, ok := claimOf(p, now.Add(ms))
	require.False(t, ok, "nothing committed since: no claim")
	require.Equal(t, 2*time.Second-ms, wait, "until the safety poll")

	p.Wake()
	wait, ok = claimOf(p, now.Add(5*ms))
	require.False(t, ok)
	require.Equal(t, 15*ms, wait, "woken: the claim waits for its slot, one interval after the previous")
	_, ok = claimOf(p, now.Add(20*ms))
	require.True(t, ok)
	_, ok = claimOf(p, now.Add(20*ms))
	require.False(t, ok, "one claim per wake-up")

	_, ok = claimOf(p, now.Add(20*ms+2*time.Second))
	require.True(t, ok, "nothing woke the process for a safety poll: a claim")
}

// TestPacerSpacedClaimWaitsForTheRunningOne: a woken claim waits for the
// process's previous claim to end, so that under load, when claims take
// longer, events gather into larger batches; but not longer than
// overlapAfter, so a claim held up does not hold back the events behind it.
func TestPacerSpacedClaimWaitsForTheRunningOne(t *testing.T) {
	t.Parallel()
	p := NewPacer(5*ms, 3*time.Second)
	now := time.Now()
	require.True(t, p.claim(now).ok, "the first claim; it keeps running")
	p.Wake()
	g := p.claim(now.Add(10 * ms))
	require.False(t, g.ok, "the interval has passed, but the previous claim still runs")
	require.Equal(t, overlapAfter-10*ms, g.wait, "it waits for that claim's end, at most overlapAfter after its start")
	p.finished()
	require.Len(t, p.signal, 1, "the end of the running claim wakes a waiting forwarder")
	require.True(t, p.claim(now.Add(11*ms)).ok, "and the woken claim starts")

	p.Wake()
	require.False(t, p.claim(now.Add(20*ms)).ok)
	require.True(t, p.claim(now.Add(11*ms+overlapAfter)).ok, "a claim held up longer than overlapAfter no longer holds the next back")
}

func TestPacerFirstEventAfterAQuietSpellIsClaimedAtOnce(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	now := time.Now()
	_, ok := claimOf(p, now)
	require.True(t, ok)
	p.Wake()
	_, ok = claimOf(p, now.Add(time.Second))
	require.True(t, ok, "the slot one interval after the last claim is long past")
}

func TestPacerFullBatchBringsAnotherForwarderAtOnce(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	_, ok := claimOf(p, time.Now())
	require.True(t, ok)
	_, err := p.await(t.Context(), 100, 100)
	require.NoError(t, err, "a full batch: the same forwarder claims again at once")
	p.Wake()
	_, ok = claimOf(p, time.Now())
	require.True(t, ok, "and a woken one joins it without waiting for the spaced slot")
}

func TestPacerManyWakeUpsLeaveOneSignal(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 2*time.Second)
	_, ok := claimOf(p, time.Now())
	require.True(t, ok)
	for range 1000 {
		p.Wake()
	}
	require.Len(t, p.signal, 1, "a flood of notifications wakes one waiting forwarder")
}

func TestPacerAwaitReturnsOnWakeUp(t *testing.T) {
	t.Parallel()
	p := NewPacer(time.Millisecond, time.Hour)
	_, ok := claimOf(p, time.Now())
	require.True(t, ok)
	returned := make(chan error, 1)
	go func() {
		_, err := p.await(t.Context(), 0, 100)
		returned <- err
	}()
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
	require.True(t, p.fullScanNow(now), "the process's first claim is a full scan")
	require.False(t, p.fullScanNow(now.Add(10*ms)), "the next claims, by any forwarder, start from their floors")
	require.True(t, p.fullScanNow(now.Add(FullScanInterval)), "once due, the next claim by any forwarder scans from the oldest pending row")
	require.False(t, p.fullScanNow(now.Add(FullScanInterval+ms)), "and only that one")
}

func TestPacerFollowsAClaimFromAFloorWithAFullScan(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 3*time.Second)
	now := time.Now()
	g := claimNow(p, now)
	require.True(t, g.ok)
	require.True(t, g.full, "the process's first claim scans from the oldest pending row")
	wait, _ := claimOf(p, now.Add(ms))
	require.Equal(t, 3*time.Second-ms, wait, "after a full scan, nothing is owed: the safety poll")

	p.Wake()
	g = claimNow(p, now.Add(100*ms))
	require.True(t, g.ok)
	require.False(t, g.full, "woken before the full scan is due: a claim from the floor")
	wait, ok := claimOf(p, now.Add(200*ms))
	require.False(t, ok)
	require.Equal(t, FullScanInterval-200*ms, wait, "a full scan follows, though nothing woke the process")
	g = claimNow(p, now.Add(FullScanInterval))
	require.True(t, g.ok)
	require.True(t, g.full)
	wait, ok = claimOf(p, now.Add(FullScanInterval+ms))
	require.False(t, ok)
	require.Equal(t, 3*time.Second-ms, wait, "then nothing until the safety poll")
}

// TestIdleForwardersClaimOnceAtATime: eight forwarders wait on one pacer,
// and their timers fire together for the full scan owed after activity,
// and then for the safety polls. Each time one of them claims, and the
// process then stays quiet until its safety poll.
func TestIdleForwardersClaimOnceAtATime(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 3*time.Second)
	now := time.Now()
	require.True(t, claimNow(p, now).ok)
	p.Wake()
	g := claimNow(p, now.Add(50*ms))
	require.True(t, g.ok)
	require.False(t, g.full, "a woken claim from the floor owes a full scan")

	claims := 0
	for tick := now.Add(50 * ms); tick.Before(now.Add(10 * time.Second)); tick = tick.Add(10 * ms) {
		for range 8 { // every forwarder asks at every tick
			if g := claimNow(p, tick); g.ok {
				require.True(t, g.full, "a claim nothing woke scans from the oldest pending row")
				claims++
			}
		}
	}
	// The owed full scan at 1.05 s, then safety polls at 4.05 s and 7.05 s.
	require.Equal(t, 3, claims, "claims of an idle process in 10 s")
}

// TestPacerLogsAnOutageOncePerProcess: however many forwarders fail, and
// however many empty claims succeed meanwhile, the process logs one line
// when the first batch fails and one when a batch is forwarded again.
func TestPacerLogsAnOutageOncePerProcess(t *testing.T) {
	t.Parallel()
	p := NewPacer(20*ms, 3*time.Second)
	require.False(t, p.forwarded(), "no outage yet: nothing to log")
	require.True(t, p.failed(), "the first failure is logged")
	for range 20 {
		require.False(t, p.failed(), "later failures, by any forwarder, are not")
	}
	require.True(t, p.forwarded(), "the first batch forwarded again is logged")
	require.False(t, p.forwarded())
	require.True(t, p.failed(), "a new outage is logged again")
}
