package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDocsErrorsAreProblems: the docs' own 404 and 405 are problem+json like
// every other error (the validating transport rejects any other error body),
// while the UI and its assets are still served.
func TestDocsErrorsAreProblems(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	cases := []struct {
		method, path string
		want         int
		ctype        string
	}{
		{"GET", "/docs/", http.StatusOK, "text/html"},
		{"GET", "/docs/swagger-ui.css", http.StatusOK, "text/css"},
		{"GET", "/docs/no-such-asset.js", http.StatusNotFound, "application/problem+json"},
		{"GET", "/docs/a/b/c", http.StatusNotFound, "application/problem+json"},
		{"POST", "/docs/", http.StatusMethodNotAllowed, "application/problem+json"},
		{"DELETE", "/docs/swagger-ui.css", http.StatusMethodNotAllowed, "application/problem+json"},
		{"POST", "/docs", http.StatusMethodNotAllowed, "application/problem+json"},
		{"PUT", "/openapi.json", http.StatusMethodNotAllowed, "application/problem+json"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, "", nil, "")
			require.Equal(t, tc.want, r.Status, "%s", clip(r.Body))
			require.Contains(t, r.Header.Get("Content-Type"), tc.ctype)
			if tc.want >= 400 {
				require.Equal(t, tc.want, problemOf(t, r.Body).Status)
			}
		})
	}
}
