// Package testlock coordinates tests across packages that share a real
// service: a test that stops the service (an outage test) holds the lock
// exclusively; every other test of that service holds it shared. Test
// binaries of different packages run at once, so the lock is a file lock.
//
// A test that already holds a service's lock exclusively may ask for it
// again (a helper it calls takes the shared lock, say): that is a no-op, so
// an outage test can use the ordinary helpers.
package testlock

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

// Shared lets t use service alongside other tests, but never during an outage test.
func Shared(t testing.TB, service string) {
	t.Helper()
	if _, ok := heldBy(t, service); ok {
		return
	}
	f := open(t, service)
	if err := flock(f, syscall.LOCK_SH); err != nil {
		t.Fatalf("testlock: lock %s: %v", f.Name(), err)
	}
	hold(t, service, f, syscall.LOCK_SH)
}

// Exclusive makes t the only test using each of services until it ends. It
// takes all of them or none: it never waits for one lock while holding
// another, so it cannot deadlock with tests that take their shared locks
// one after the other, in any order.
func Exclusive(t testing.TB, services ...string) {
	t.Helper()
	var want []string
	for _, s := range services {
		switch how, ok := heldBy(t, s); {
		case ok && how == syscall.LOCK_EX:
		case ok:
			t.Fatalf("testlock: %s is held shared by this test; take the exclusive lock first", s)
		default:
			want = append(want, s)
		}
	}
	if len(want) == 0 {
		return
	}
	files := make([]*os.File, len(want))
	for i, s := range want {
		files[i] = open(t, s)
	}
	// Wait for one contended lock while holding nothing, then try the others
	// without waiting; when one of them is taken, let everything go and
	// wait for that one instead.
	waitFor := 0
	for {
		if err := flock(files[waitFor], syscall.LOCK_EX); err != nil {
			t.Fatalf("testlock: lock %s: %v", files[waitFor].Name(), err)
		}
		busy := -1
		for i, f := range files {
			if i == waitFor {
				continue
			}
			err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
			if errors.Is(err, syscall.EWOULDBLOCK) {
				busy = i
				break
			}
			if err != nil {
				t.Fatalf("testlock: lock %s: %v", f.Name(), err)
			}
		}
		if busy < 0 {
			break
		}
		for _, f := range files {
			_ = flock(f, syscall.LOCK_UN)
		}
		waitFor = busy
	}
	for i, s := range want {
		hold(t, s, files[i], syscall.LOCK_EX)
	}
}

type key struct {
	t       testing.TB
	service string
}

var (
	mu   sync.Mutex
	held = map[key]int{} // LOCK_SH or LOCK_EX
)

func heldBy(t testing.TB, service string) (int, bool) {
	mu.Lock()
	defer mu.Unlock()
	how, ok := held[key{t, service}]
	return how, ok
}

// hold records that t holds f's lock and lets it go when t ends.
func hold(t testing.TB, service string, f *os.File, how int) {
	mu.Lock()
	held[key{t, service}] = how
	mu.Unlock()
	t.Cleanup(func() {
		mu.Lock()
		delete(held, key{t, service})
		mu.Unlock()
		_ = flock(f, syscall.LOCK_UN)
		_ = f.Close()
	})
}

func open(t testing.TB, service string) *os.File {
	t.Helper()
	path := filepath.Join(os.TempDir(), "orders-testlock-"+service)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testlock: open %s: %v", path, err)
	}
	return f
}

func flock(f *os.File, how int) error {
	return syscall.Flock(int(f.Fd()), how) //nolint:gosec // a file descriptor fits in int
}
