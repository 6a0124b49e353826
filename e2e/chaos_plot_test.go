package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestChaosTimelineCounts checks the per-second counts the timeline draws,
// without running the chaos: requests by the second they ended in, 5xx
// among them, unanswered ones apart, and the orders processed each second.
func TestChaosTimelineCounts(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(seconds(s)) }
	ps := perSecond(start, []chaosCall{
		{end: at(0.2), status: 201}, {end: at(0.9), status: 200},
		{end: at(2.5), status: 503}, {end: at(2.6), status: 500}, {end: at(2.7), status: 201},
		{end: at(3.1), status: 0},
	})
	require.Equal(t, []int{2, 0, 3, 0}, ps.Requests, "answered, by second")
	require.Equal(t, []int{0, 0, 2, 0}, ps.HTTP5xx)
	require.Equal(t, []int{0, 0, 0, 1}, ps.NoAnswer)

	waiting, done := backlog(start,
		[]time.Time{at(0.1), at(0.2), at(1.5), at(1.6)},
		[]time.Time{at(0.5), at(2.2), at(2.3), at(3.5)})
	require.Equal(t, []int{0, 1, 3, 1, 0}, waiting, "until a second after the last processed")
	require.Equal(t, []int{0, 1, 0, 2, 1}, done)
}

// TestChaosResultWritesItsTimeline checks that a chaos result is written as
// JSON with its timeline next to it, the fault windows named on it.
func TestChaosResultWritesItsTimeline(t *testing.T) {
	t.Parallel()
	res := chaosResult{
		StartedAt: time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC),
		Plan:      chaosPlan{Name: "short"},
		Windows: []chaosWindow{
			{Fault: "RabbitMQ application stopped", Start: 1, Down: 1.5, Up: 3},
			{Fault: "PostgreSQL stopped and started", Start: 4, Down: 4.2, Up: 6},
		},
		PerSecond: chaosPerSecond{Requests: []int{10, 10, 10, 10, 10, 4, 10, 10}, HTTP5xx: []int{0, 0, 0, 0, 0, 6, 0, 0}, NoAnswer: make([]int, 8)},
		Audit:     chaosAudit{Backlog: []int{0, 5, 20, 9, 0, 0, 0, 0}, Processed: []int{10, 5, 0, 20, 18, 4, 10, 10}},
	}
	dir := t.TempDir()
	_, err := res.write(dir)
	require.NoError(t, err)
	for _, name := range []string{"chaos-20261126T150000Z-short", "chaos-latest-short"} {
		require.FileExists(t, filepath.Join(dir, name+".json"))
		svg, err := os.ReadFile(filepath.Join(dir, name+".svg"))
		require.NoError(t, err)
		for _, want := range []string{"RabbitMQ application stopped", "PostgreSQL stopped and started", "requests answered", "5xx"} {
			require.Contains(t, string(svg), want, name)
		}
	}
}
