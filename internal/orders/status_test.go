package orders

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCanTransition(t *testing.T) {
	t.Parallel()
	// All 16 pairs, spelled out rather than derived from the table under test.
	tests := []struct {
		from, to Status
		want     bool
	}{
		{StatusPending, StatusPending, false},
		{StatusPending, StatusPaid, true},
		{StatusPending, StatusShipped, false},
		{StatusPending, StatusCanceled, true},

		{StatusPaid, StatusPending, false},
		{StatusPaid, StatusPaid, false},
		{StatusPaid, StatusShipped, true},
		{StatusPaid, StatusCanceled, true},

		{StatusShipped, StatusPending, false},
		{StatusShipped, StatusPaid, false},
		{StatusShipped, StatusShipped, false},
		{StatusShipped, StatusCanceled, false},

		{StatusCanceled, StatusPending, false},
		{StatusCanceled, StatusPaid, false},
		{StatusCanceled, StatusShipped, false},
		{StatusCanceled, StatusCanceled, false},
	}
	require.Len(t, tests, len(allStatuses())*len(allStatuses()))
	for _, tt := range tests {
		t.Run(string(tt.from)+"->"+string(tt.to), func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, CanTransition(tt.from, tt.to))
		})
	}
}

func TestFinalStatuses(t *testing.T) {
	t.Parallel()
	for _, final := range []Status{StatusShipped, StatusCanceled} {
		for _, to := range allStatuses() {
			require.False(t, CanTransition(final, to), "%s is final but may move to %s", final, to)
		}
	}
}

func TestCanTransitionUnknownStatus(t *testing.T) {
	t.Parallel()
	for _, s := range allStatuses() {
		require.False(t, CanTransition("LOST", s))
		require.False(t, CanTransition(s, "LOST"))
		require.False(t, CanTransition(s, ""))
	}
}

func TestSourcesOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		to   Status
		want []string
	}{
		{StatusPending, nil},
		{StatusPaid, []string{"PENDING"}},
		{StatusShipped, []string{"PAID"}},
		{StatusCanceled, []string{"PENDING", "PAID"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.to), func(t *testing.T) {
			t.Parallel()
			require.ElementsMatch(t, tt.want, sourcesOf(tt.to))
		})
	}
}

func allStatuses() []Status {
	return []Status{StatusPending, StatusPaid, StatusShipped, StatusCanceled}
}
