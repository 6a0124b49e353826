package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkHostileBodies sends each hostile shape to the real server (in
// this process, so bytes and allocations per request are the server's plus a
// small, fixed client share) and reports time, heap bytes and allocations per
// request. The budget is 50 ms and 8 MiB per request of up to 1 MiB.
//
//	go test -run XXX -bench HostileBodies -benchmem ./server
func BenchmarkHostileBodies(b *testing.B) {
	ts := startQuietServer(b, nil)
	token, ids := seedOrders(b, ts, 1)
	httpClient := &http.Client{}
	for _, shape := range hostileShapes() {
		b.Run(shape.name, func(b *testing.B) {
			req := shape.request(b.Context(), b, ts.URL, token, ids[0].String())
			b.ReportAllocs()
			b.SetBytes(int64(len(shape.body)))
			for b.Loop() {
				req.Body = io.NopCloser(bytes.NewReader(shape.body))
				resp, err := httpClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != shape.want {
					b.Fatalf("%s answered %d, want %d", shape.name, resp.StatusCode, shape.want)
				}
			}
		})
	}
}

// request builds the shape's request against base, authenticated as the
// shape says, on the order id when the path names one.
func (s hostileShape) request(ctx context.Context, t testing.TB, base, token, orderID string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, s.method, base+strings.ReplaceAll(s.path, "{order}", orderID), bytes.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", s.contentType)
	switch s.token {
	case "":
	case "valid":
		req.Header.Set("Authorization", "Bearer "+token)
	default:
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	return req
}
