// Package testredis gives each test its own key prefix on the local Redis,
// deletes its keys afterwards, and can stop and start Redis for outage
// tests. A test fails (never skips) when Redis is unreachable.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/ordersvc/orders/internal/cache/pin"
	"github.com/ordersvc/orders/internal/testkit/testlock"
)

// URL is the Redis the tests use; TEST_REDIS_URL overrides the local default.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Prefix returns a fresh key prefix for t and deletes its keys when t ends.
// It takes Redis's shared test lock, so an outage test never runs meanwhile;
// outage tests call Outage instead.
func Prefix(t testing.TB) string {
	t.Helper()
	testlock.Shared(t, "redis")
	return prefix(t)
}

// Outage returns a fresh prefix for a test that will stop Redis: it holds
// Redis exclusively and makes sure Redis runs again when the test ends,
// whether it passed or not.
func Outage(t testing.TB) string {
	t.Helper()
	testlock.Exclusive(t, "redis")
	WaitUp(t)
	t.Cleanup(func() { Start(t) })
	return prefix(t)
}

func prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	p := "test_" + hex.EncodeToString(b)
	WaitUp(t)
	t.Cleanup(func() { deleteKeys(t, p) })
	return p
}

// Client returns a rueidis client on URL, closed when t ends. Its commands
// are pinned, as the service's are (see package pin).
func Client(t testing.TB) rueidis.Client {
	t.Helper()
	opt, err := rueidis.ParseURL(URL())
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		t.Fatalf("testredis: connect to %s: %v (is Redis running? see README)", URL(), err)
	}
	t.Cleanup(c.Close)
	return pin.Client(c)
}

// Stop shuts Redis down (without saving) and waits until it refuses connections.
func Stop(t testing.TB) {
	t.Helper()
	host, port := hostPort(t)
	out, err := exec.Command("redis-cli", "-h", host, "-p", port, "shutdown", "nosave").CombinedOutput() //nolint:noctx // a short admin command
	if err != nil && reachable() {
		t.Fatalf("testredis: shutdown: %v\n%s", err, out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for reachable() {
		if time.Now().After(deadline) {
			t.Fatal("testredis: Redis still answers 10s after shutdown")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Start starts Redis as CI does (.ci/run) unless it answers already, and
// waits until it does.
func Start(t testing.TB) {
	t.Helper()
	if reachable() {
		return
	}
	_, port := hostPort(t)
	out, err := exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", port, //nolint:noctx,gosec // the CI start command
		"--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log").CombinedOutput()
	if err != nil {
		t.Fatalf("testredis: redis-server: %v\n%s", err, out)
	}
	WaitUp(t)
}

// WaitUp waits until Redis answers PING.
func WaitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !reachable() {
		if time.Now().After(deadline) {
			t.Fatalf("testredis: Redis is not reachable at %s (is it running? see README)", URL())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func reachable() bool {
	opt, err := rueidis.ParseURL(URL())
	if err != nil {
		return false
	}
	opt.DisableCache, opt.DisableRetry, opt.ForceSingleClient = true, true, true
	opt.Dialer.Timeout = time.Second
	c, err := rueidis.NewClient(opt)
	if c == nil {
		return false
	}
	c = pin.Client(c)
	defer c.Close()
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Do(ctx, c.B().Ping().Build()).Error() == nil
}

func hostPort(t testing.TB) (string, string) {
	t.Helper()
	u, err := url.Parse(URL())
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port = u.Host, "6379"
	}
	return host, port
}

func deleteKeys(t testing.TB, prefix string) {
	if !reachable() {
		t.Logf("testredis: cleanup of %s skipped, Redis unreachable", prefix)
		return
	}
	opt, _ := rueidis.ParseURL(URL())
	opt.DisableCache = true
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return
	}
	c = pin.Client(c)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var cursor uint64
	for {
		e, err := c.Do(ctx, c.B().Scan().Cursor(cursor).Match(prefix+":*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Logf("testredis: cleanup of %s: %v", prefix, err)
			return
		}
		if len(e.Elements) > 0 {
			_ = c.Do(ctx, c.B().Unlink().Key(e.Elements...).Build()).Error()
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}
