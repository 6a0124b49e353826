// Package testhttp holds the small HTTP steps tests of several packages share.
package testhttp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Get fetches url, requires 200 and returns the body.
func Get(t testing.TB, url string) string {
	t.Helper()
	body, err := Fetch(context.Background(), url)
	if err != nil {
		t.Fatalf("testhttp: %v", err)
	}
	return body
}

// Fetch is Get for goroutines other than the test's, where a failure is
// reported (t.Errorf) rather than required.
func Fetch(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, b)
	}
	return string(b), nil
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
