package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/ordersvc/orders/internal/hostile"
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
	for _, shape := range hostile.Shapes() {
		b.Run(shape.Name, func(b *testing.B) {
			req := shape.Request(b.Context(), b, ts.URL, token, ids[0].String())
			b.ReportAllocs()
			b.SetBytes(int64(len(shape.Body)))
			for b.Loop() {
				req.Body = io.NopCloser(bytes.NewReader(shape.Body))
				resp, err := httpClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != shape.Want {
					b.Fatalf("%s answered %d, want %d", shape.Name, resp.StatusCode, shape.Want)
				}
			}
		})
	}
}
