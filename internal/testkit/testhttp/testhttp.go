// Package testhttp holds the small HTTP steps tests of several packages share.
package testhttp

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Get fetches url, requires 200 and returns the body.
func Get(t testing.TB, url string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("testhttp: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("testhttp: GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("testhttp: read %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testhttp: GET %s: status %d: %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// Metric reads the value of one series (name and labels, as exposed) from a
// Prometheus text exposition; a series not exposed yet reads 0.
func Metric(body, series string) float64 {
	for line := range strings.Lines(body) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				return v
			}
		}
	}
	return 0
}
