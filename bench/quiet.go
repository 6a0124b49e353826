package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/gen/db"
)

// WakeupResult is how fast the first event after a quiet spell is processed:
// one order created after the whole system sat idle, several times.
type WakeupResult struct {
	QuietSeconds float64   `json:"quiet_seconds"`          // idle time before each sample
	SamplesMS    []float64 `json:"commit_to_processed_ms"` // one per sample, in order
	MedianMS     float64   `json:"median_ms"`
	MaxMS        float64   `json:"max_ms"`
}

// wakeupQuiet is the idle time before each wake-up sample: longer than the
// forwarders' claim spacing and the full scan that follows activity, so
// that the order finds them waiting for a notification, and shorter than
// the safety poll, so that no poll happens to claim it.
const wakeupQuiet = 2200 * time.Millisecond

// wakeupRun creates one order after each quiet spell, n times, and reads its
// commit -> processed time from the database once it is surely processed
// (the read happens during the next quiet spell, not while the order is on
// its way, so it takes nothing from the pipeline).
func wakeupRun(ctx context.Context, a *api, pool *pgxpool.Pool, n int) (WakeupResult, error) {
	res := WakeupResult{QuietSeconds: wakeupQuiet.Seconds()}
	q := db.New(pool)
	for i := range n {
		if err := sleepCtx(ctx, wakeupQuiet); err != nil {
			return res, err
		}
		since := time.Now().UTC().Add(-time.Millisecond)
		if err := a.createOrder(ctx, i, 0); err != nil {
			return res, fmt.Errorf("wake-up sample %d: %w", i+1, err)
		}
		// A minute: long enough for a sample caught by a broker outage to
		// count with its real, large figure instead of ending the run.
		var lat []float64
		for wait := time.Now().Add(time.Minute); time.Now().Before(wait); {
			if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
				return res, err
			}
			var err error
			if lat, err = q.ProcessingLatenciesSince(ctx, since); err != nil {
				return res, err
			}
			if len(lat) > 0 {
				break
			}
		}
		if len(lat) != 1 {
			return res, fmt.Errorf("wake-up sample %d: %d orders processed, want 1", i+1, len(lat))
		}
		res.SamplesMS = append(res.SamplesMS, lat[0])
	}
	res.MedianMS, res.MaxMS = median(slices.Clone(res.SamplesMS)), slices.Max(res.SamplesMS)
	return res, nil
}

// IdleResult is what an idle system costs the database.
type IdleResult struct {
	Seconds          float64 `json:"seconds"`
	Commits          int64   `json:"transactions_committed"` // pg_stat_database.xact_commit of the bench database
	WorkersProcesses int     `json:"workers_processes"`
	PerSecondPerProc float64 `json:"transactions_per_second_per_workers_process"`
}

// idleRun counts the transactions the bench database commits over window
// while nothing uses the system: the API's, the workers' and the bench's
// own (it runs none meanwhile). The counter is read from the admin
// database, so that reading it does not count. It first waits past the 10 s
// after which an idle backend reports what it did before (PostgreSQL
// flushes its statistics then at the latest), so that the previous
// measurement's transactions do not count in the window.
func idleRun(ctx context.Context, s *system, window time.Duration) (IdleResult, error) {
	res := IdleResult{WorkersProcesses: 1}
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return res, err
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing after use
	commits := func() (int64, error) {
		// A fresh snapshot per read: within a transaction PostgreSQL would
		// otherwise answer from the first read's.
		if _, err := conn.Exec(ctx, "SELECT pg_stat_clear_snapshot()"); err != nil {
			return 0, err
		}
		var n int64
		err := conn.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = $1", s.dbName).Scan(&n)
		return n, err
	}
	if err := sleepCtx(ctx, 11*time.Second); err != nil {
		return res, err
	}
	before, err := commits()
	if err != nil {
		return res, err
	}
	start := time.Now()
	if err := sleepCtx(ctx, window); err != nil {
		return res, err
	}
	after, err := commits()
	if err != nil {
		return res, err
	}
	res.Seconds, res.Commits = time.Since(start).Seconds(), after-before
	res.PerSecondPerProc = float64(res.Commits) / res.Seconds / float64(res.WorkersProcesses)
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// loadAverage is the machine's 1, 5 and 15 minute load averages, as
// /proc/loadavg gives them: how busy the machine was around the run.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
