package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRequestHeaderLimit: headers up to 64 KiB are read; beyond, Go's server
// answers 431 before any of our code runs (text/plain, so this test uses a
// plain client rather than the validating transport).
func TestRequestHeaderLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	c := &http.Client{Transport: transport}
	cases := []struct {
		name string
		size int
		want int
	}{
		{"60 KiB", 60 << 10, http.StatusOK},
		{"72 KiB", 72 << 10, http.StatusRequestHeaderFieldsTooLarge},
		{"1 MiB", 1 << 20, http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/health", nil)
			require.NoError(t, err)
			req.Header.Set("X-Padding", strings.Repeat("a", tc.size))
			resp, err := c.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tc.want, resp.StatusCode)
		})
	}
}

// TestRequestIDAcceptedOnlyIfPlain: a client's X-Request-Id is echoed, put
// in the problem body and logged only when it is 1-64 plain characters;
// otherwise the server uses an id of its own.
func TestRequestIDAcceptedOnlyIfPlain(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	s := newContractServer(t, ts.URL, ts.DBURL, newObserved())
	longest := strings.Repeat("a", 64)
	cases := []struct {
		name  string
		sent  []string
		taken bool
	}{
		{"plain", []string{"req-42_a.b:c"}, true},
		{"a UUID", []string{"0b6f6a3e-4d8b-4a8e-9d1c-6b2f4c1e9a11"}, true},
		{"64 characters", []string{longest}, true},
		{"65 characters", []string{longest + "a"}, false},
		{"10,000 characters", []string{strings.Repeat("b", 10_000)}, false},
		{"a space", []string{"a b"}, false},
		{"markup", []string{"<script>alert(1)</script>"}, false},
		{"a forged log field", []string{`x","level":"ERROR`}, false},
		{"not ASCII", []string{"ünïcödé"}, false},
		{"a tab", []string{"a\tb"}, false},
		{"two headers", []string{"first-of-two-ids", "second-of-two-ids"}, false}, // distinctive: the whole log is searched for them
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), "GET", s.URL+"/no-such-path/", nil)
			require.NoError(t, err)
			for _, id := range tc.sent {
				req.Header.Add("X-Request-Id", id)
			}
			r := s.send(t, req)
			require.Equal(t, http.StatusNotFound, r.Status)
			got := r.Header.Get("X-Request-Id")
			p := problemOf(t, r.Body)
			require.NotNil(t, p.RequestId)
			require.Equal(t, got, *p.RequestId, "the problem names the id the answer carries")
			if tc.taken {
				require.Equal(t, tc.sent[0], got)
			} else {
				require.True(t, isPlainRequestID(got), "a generated id: %q", got)
				require.NotContains(t, tc.sent, got)
				for _, id := range tc.sent {
					require.NotContains(t, ts.logs.String(), id, "the rejected id is never logged")
				}
			}
			// Access lines are written in batches, at least every 100 ms.
			require.Eventually(t, func() bool {
				for _, rec := range ts.logs.Find("request") {
					if rec["request_id"] == got {
						return true
					}
				}
				return false
			}, 2*time.Second, 10*time.Millisecond, "the access log carries the id the answer carries")
		})
	}
}

// TestBodyLimitIsExactlyOneMiB: the limit openapi.yaml and the README state
// (1 MiB = 1,048,576 bytes) is the one enforced, whether the client sends
// Content-Length or a chunked body.
func TestBodyLimitIsExactlyOneMiB(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	// registration padded with white space to exactly size bytes
	body := func(size int) []byte {
		head := fmt.Sprintf(`{"email":%q,"password":%q`, uniqueEmail(), testPassword)
		return []byte(head + strings.Repeat(" ", size-len(head)-1) + "}")
	}
	cases := []struct {
		size int
		want int
	}{
		{1 << 20, http.StatusCreated},
		{1<<20 + 1, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		for _, chunked := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bytes, chunked %v", tc.size, chunked), func(t *testing.T) {
				b := body(tc.size)
				require.Len(t, b, tc.size)
				var reader io.Reader = bytes.NewReader(b)
				if chunked {
					reader = io.MultiReader(reader) // no length known: sent chunked
				}
				req, err := http.NewRequestWithContext(context.Background(), "POST", s.URL+"/register/", reader)
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/json")
				if chunked {
					require.Equal(t, int64(0), req.ContentLength)
				}
				r := s.send(t, req)
				require.Equal(t, tc.want, r.Status, "%s", clip(r.Body))
				if tc.want == http.StatusRequestEntityTooLarge {
					require.Equal(t, "request body is larger than 1 MiB", *problemOf(t, r.Body).Detail)
				}
			})
		}
	}
}

// TestFixedHeadersStayFixed: responses share a fixed header's value, so a
// response that adds to it or replaces it must leave the next one as it was.
func TestFixedHeadersStayFixed(t *testing.T) {
	t.Parallel()
	f := newFixedHeader("x-content-type-options", "nosniff")
	first, second := http.Header{}, http.Header{}
	f.setOn(first)
	f.setOn(second)
	require.Equal(t, "nosniff", first.Get("X-Content-Type-Options"), "set under the canonical key")
	first.Add("X-Content-Type-Options", "other")
	second.Set("X-Content-Type-Options", "replaced")
	third := http.Header{}
	f.setOn(third)
	third.Add("X-Content-Type-Options", "third")
	require.Equal(t, []string{"nosniff", "other"}, first.Values("X-Content-Type-Options"))
	require.Equal(t, []string{"nosniff", "third"}, third.Values("X-Content-Type-Options"))
	fourth := http.Header{}
	f.setOn(fourth)
	require.Equal(t, []string{"nosniff"}, fourth.Values("X-Content-Type-Options"))
}
