// Package testhttp holds the small HTTP steps tests of several packages share.
package testhttp

import (
	"context"
	"io"
	"net/http"
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
