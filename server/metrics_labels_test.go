package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestInventedMethodsDoNotAddSeries: methods outside the standard set share
// the label value "other" and unmatched paths the route "unmatched", so a
// client inventing 1,000 methods on known and unknown paths leaves the number
// of series /metrics exposes where it was.
func TestInventedMethodsDoNotAddSeries(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	send := func(from, to int) {
		for i := from; i < to; i++ {
			path := "/orders/"
			if i%2 == 1 {
				path = fmt.Sprintf("/invented-%d/", i)
			}
			req, err := http.NewRequestWithContext(t.Context(), fmt.Sprintf("M%dETHOD", i), s.URL+path, nil)
			require.NoError(t, err)
			r := s.send(t, req)
			require.Contains(t, []int{http.StatusNotFound, http.StatusMethodNotAllowed}, r.Status, "%s", r.Body)
		}
	}
	send(0, 4) // the first of each kind creates its series
	scrapeMetrics(t, s.URL)
	before := scrapeMetrics(t, s.URL)
	send(4, 1004)
	after := scrapeMetrics(t, s.URL)

	require.Equal(t, seriesCount(before), seriesCount(after), "series before and after 1,000 invented methods")
	require.Contains(t, after, `orders_http_requests_total{method="other",route="unmatched",status="404"} 502`)
	require.Contains(t, after, `orders_http_requests_total{method="other",route="/orders/",status="405"} 502`)
	require.NotContains(t, after, "ETHOD")
}

// seriesCount counts the samples of a Prometheus text exposition.
func seriesCount(exposition string) int {
	n := 0
	for _, line := range strings.Split(exposition, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			n++
		}
	}
	return n
}

func TestMethodLabel(t *testing.T) {
	t.Parallel()
	for method, want := range map[string]string{
		"GET": "GET", "HEAD": "HEAD", "POST": "POST", "PUT": "PUT", "PATCH": "PATCH", "DELETE": "DELETE", "OPTIONS": "OPTIONS",
		"get": "other", "CONNECT": "other", "TRACE": "other", "PROPFIND": "other", "": "other",
	} {
		require.Equal(t, want, methodLabel(method), "method %q", method)
	}
}
