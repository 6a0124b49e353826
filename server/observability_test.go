package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAccessLogLinesBeforeShutdownAreWritten: access-log lines are batched,
// and the requests answered just before a shutdown (SIGTERM cancels run's
// context) still have their line once run has returned.
func TestAccessLogLinesBeforeShutdownAreWritten(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	const requests = 50
	for range requests {
		resp, err := http.Get(ts.URL + "/health")
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	ts.stop()
	var logged int
	for _, rec := range ts.logs.Find("request") {
		if rec["route"] == "/health" {
			logged++
		}
	}
	require.Equal(t, requests, logged, "every answered request has its line")
	require.NotEmpty(t, ts.logs.Find("stopped"), "and the lines after it too")
}
