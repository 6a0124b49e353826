package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	allowedOrigin = "https://app.example.com"
	otherOrigin   = "https://evil.example.net"
)

// answer is the status and headers of a response whose body was drained.
type answer struct {
	StatusCode int
	Header     http.Header
}

// send makes a request with a plain client: preflights are outside the
// contract, and the point is the exact headers.
func send(t *testing.T, method, url string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	return answer{StatusCode: resp.StatusCode, Header: resp.Header}
}

func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"CORS_ALLOWED_ORIGINS": "http://localhost:3000, " + allowedOrigin})
	paths := []string{
		"/register/", "/token/", "/orders/", "/orders", "/orders/0b6f6a3e-4d8b-4a8e-9d1c-6b2f4c1e9a11/",
		"/orders/user/1/", "/orders/user/1", "/no/such/path/",
	}
	for _, path := range paths {
		t.Run(path, func(t *testing.T) {
			preflight := map[string]string{
				"Access-Control-Request-Method":  "PATCH",
				"Access-Control-Request-Headers": "authorization, content-type",
			}
			preflight["Origin"] = allowedOrigin
			resp := send(t, http.MethodOptions, s.URL+path, preflight)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, allowedOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
			require.Equal(t, "GET,POST,PATCH,OPTIONS", resp.Header.Get("Access-Control-Allow-Methods"))
			require.Equal(t, "Authorization,Content-Type,X-Request-Id,Idempotency-Key,If-Match,If-None-Match", resp.Header.Get("Access-Control-Allow-Headers"))
			require.Equal(t, "600", resp.Header.Get("Access-Control-Max-Age"))
			require.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"), "credentials are off by default")
			require.Contains(t, resp.Header.Values("Vary"), "Origin")

			preflight["Origin"] = otherOrigin
			resp = send(t, http.MethodOptions, s.URL+path, preflight)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), "an unlisted origin is refused")
			require.Empty(t, resp.Header.Get("Access-Control-Allow-Methods"))
		})
	}
}

func TestCORSActualRequests(t *testing.T) {
	t.Parallel()
	s := startServer(t, map[string]string{"CORS_ALLOWED_ORIGINS": allowedOrigin, "CORS_ALLOW_CREDENTIALS": "true"})
	tests := []struct {
		name, method, path, origin string
		wantStatus                 int
		wantAllowed                bool
	}{
		{"allowed origin", "GET", "/health", allowedOrigin, 200, true},
		{"allowed origin on an error", "GET", "/orders/user/1/", allowedOrigin, 401, true},
		{"unlisted origin", "GET", "/health", otherOrigin, 200, false},
		{"a lookalike origin", "GET", "/health", allowedOrigin + ".evil.example.net", 200, false},
		{"no origin (not a browser)", "GET", "/health", "", 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := map[string]string{}
			if tt.origin != "" {
				header["Origin"] = tt.origin
			}
			resp := send(t, tt.method, s.URL+tt.path, header)
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			if !tt.wantAllowed {
				require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
				require.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"))
				return
			}
			require.Equal(t, tt.origin, resp.Header.Get("Access-Control-Allow-Origin"))
			require.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
			exposed := resp.Header.Get("Access-Control-Expose-Headers")
			for _, h := range []string{"Retry-After", "RateLimit-Remaining", "Link", "X-Request-Id", "WWW-Authenticate", "ETag", "Location", "Idempotent-Replayed"} {
				require.Contains(t, exposed, h)
			}
		})
	}
}

// TestCORSWildcardWithCredentialsIsRefused: the server does not start with
// an allow-list that would let any site act with the user's credentials.
func TestCORSWildcardWithCredentialsIsRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"wildcard with credentials", map[string]string{"CORS_ALLOWED_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"}},
		{"not an origin", map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com/path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"JWT_SECRET": testJWTSecret, "HTTP_ADDR": "127.0.0.1:0"}
			for k, v := range tt.env {
				env[k] = v
			}
			err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard)
			require.Error(t, err)
			require.Contains(t, err.Error(), "CORS_ALLOWED_ORIGINS")
		})
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	tests := []struct {
		name, method, path string
		wantNoStore        bool
	}{
		{"token endpoint", "POST", "/token/", true},
		{"register endpoint", "POST", "/register/", true},
		{"an API error", "GET", "/orders/user/1/", true},
		{"unknown path", "GET", "/nope/", true},
		{"probe", "GET", "/ready", true},
		{"docs", "GET", "/docs/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := send(t, tt.method, s.URL+tt.path, nil)
			require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
			require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"))
			if tt.wantNoStore {
				require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
				require.Equal(t, "default-src 'none'; frame-ancestors 'none'", resp.Header.Get("Content-Security-Policy"))
			} else {
				require.NotEqual(t, "no-store", resp.Header.Get("Cache-Control"))
				require.Empty(t, resp.Header.Get("Content-Security-Policy"), "Swagger UI needs its scripts")
			}
		})
	}
}
