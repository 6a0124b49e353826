// Package testlock coordinates tests across packages that share a real
// service: a test that stops the service (an outage test) holds the lock
// exclusively; every other test of that service holds it shared. Test
// binaries of different packages run at once, so the lock is a file lock.
package testlock

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// Shared lets t use service alongside other tests, but never during an outage test.
func Shared(t testing.TB, service string) { lock(t, service, syscall.LOCK_SH) }

// Exclusive makes t the only test using service until it ends.
func Exclusive(t testing.TB, service string) { lock(t, service, syscall.LOCK_EX) }

func lock(t testing.TB, service string, how int) {
	t.Helper()
	path := filepath.Join(os.TempDir(), "orders-testlock-"+service)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatalf("testlock: open %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil { //nolint:gosec // a file descriptor fits in int
		t.Fatalf("testlock: lock %s: %v", path, err)
	}
	t.Cleanup(func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN) //nolint:gosec // a file descriptor fits in int
		_ = f.Close()
	})
}
