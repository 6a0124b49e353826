package main

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// maxHeaderBytes bounds the request line and headers. Go's server answers a
// larger request 431 itself (text/plain, before any of our code runs); it
// allows 4 KiB beyond this figure.
const maxHeaderBytes = 64 << 10

// maxRequestIDLen is the longest X-Request-Id accepted from a client.
const maxRequestIDLen = 64

// plainRequestID drops a client's X-Request-Id unless it is one short, plain
// value (1-64 of A-Z a-z 0-9 . _ : -), so that the id Echo's RequestID
// middleware then echoes and every log line carries is never the client's
// megabyte or control characters: a new one is generated instead.
func plainRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if ids := h.Values(echo.HeaderXRequestID); len(ids) > 1 || len(ids) == 1 && !isPlainRequestID(ids[0]) {
			h.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func isPlainRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// fixedHeader is a response header whose value never changes, kept as the
// map entry Header.Set would make (the key canonical, the value a slice of
// one), so that setting it on a response allocates nothing: every response
// shares the one slice. That is safe because net/http copies the map before
// it writes the header, appending to a slice of full capacity copies it,
// and no code rewrites a header value in place.
type fixedHeader struct {
	key   string
	value []string
}

func newFixedHeader(key, value string) fixedHeader {
	return fixedHeader{key: http.CanonicalHeaderKey(key), value: []string{value}}
}

func (f fixedHeader) setOn(h http.Header) { h[f.key] = f.value }
