package testredis

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Freezer is a TCP proxy to Redis that can stop forwarding without closing
// anything: to the client, Redis (or the network to it) hangs, which is the
// case a call deadline exists for. Stopping the real Redis would refuse
// connections instead, and would disturb every other test.
type Freezer struct {
	ctx    context.Context
	ln     net.Listener
	target string
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// NewFreezer proxies to the Redis at redisURL until the test ends.
func NewFreezer(t testing.TB, redisURL string) *Freezer {
	t.Helper()
	u, err := url.Parse(redisURL)
	require.NoError(t, err)
	ln, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &Freezer{ctx: t.Context(), ln: ln, target: u.Host}
	go f.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			_ = c.Close()
		}
	})
	return f
}

// URL is the proxy's Redis URL.
func (f *Freezer) URL() string { return "redis://" + f.ln.Addr().String() }

// Freeze holds every byte in both directions until Thaw.
func (f *Freezer) Freeze() { f.frozen.Store(true) }

// Thaw forwards again, the held bytes first.
func (f *Freezer) Thaw() { f.frozen.Store(false) }

func (f *Freezer) serve() {
	for {
		client, err := f.ln.Accept()
		if err != nil {
			return
		}
		server, err := new(net.Dialer).DialContext(f.ctx, "tcp", f.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, client, server)
		f.mu.Unlock()
		go f.pipe(server, client)
		go f.pipe(client, server)
	}
}

// pipe copies src to dst, holding every chunk while frozen.
func (f *Freezer) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for f.frozen.Load() {
			time.Sleep(time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
