// Package ports hands tests TCP ports on 127.0.0.1 for the servers they
// start (Redis, RabbitMQ and PostgreSQL instances, PgBouncer). Ports come
// from 10000-19999, below the kernel's ephemeral range (32768 and up on
// Linux): a server a test stops and starts again gives its port up
// meanwhile, and a port from the ephemeral range can be taken in that
// moment by any process's outgoing connection, which makes the restart fail
// with "address in use".
package ports

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
)

const (
	first = 10000
	count = 10000
)

var (
	mu     sync.Mutex
	handed = map[int]bool{}
)

// Free returns a port p that can be bound now and was not handed out before
// in this test binary; for each offset, p+offset must be bindable too (a
// Redis Cluster node's bus port is its port + 10000). It fails t when none
// is found.
func Free(t testing.TB, offsets ...int) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := first + rand.IntN(count) //nolint:gosec // not a secret
		if handed[p] || !bindable(p) {
			continue
		}
		ok := true
		for _, off := range offsets {
			ok = ok && !handed[p+off] && bindable(p+off)
		}
		if !ok {
			continue
		}
		handed[p] = true
		for _, off := range offsets {
			handed[p+off] = true
		}
		return p
	}
	t.Fatal("ports: no free port found in 10000-19999")
	return 0
}

func bindable(port int) bool {
	l, err := new(net.ListenConfig).Listen(context.Background(), "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
