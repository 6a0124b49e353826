package testdb

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/internal/testkit/testlock"
)

// Outage returns the URL of a fresh database for a test that will stop
// PostgreSQL: it holds PostgreSQL exclusively and makes sure it runs again
// when the test ends, whether it passed or not.
func Outage(t testing.TB) string {
	t.Helper()
	testlock.Exclusive(t, "postgres")
	url := New(t)
	t.Cleanup(func() { Start(t) }) // runs before New's cleanup drops the database
	return url
}

// Stop stops the local PostgreSQL cluster (fast shutdown: open sessions are
// ended) and waits until it refuses connections.
func Stop(t testing.TB) {
	t.Helper()
	pgCtlCluster(t, "stop")
	waitReachable(t, false, 30*time.Second)
}

// Start starts the local PostgreSQL cluster as CI does (.ci/run) unless it
// answers already, and waits until it accepts connections.
func Start(t testing.TB) {
	t.Helper()
	if reachable() {
		return
	}
	pgCtlCluster(t, "start")
	waitReachable(t, true, 60*time.Second)
}

// waitReachable waits until PostgreSQL accepts connections (up) or refuses them.
func waitReachable(t testing.TB, up bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for reachable() != up {
		if time.Now().After(deadline) {
			t.Fatalf("testdb: PostgreSQL at %s: still not reachable=%t after %s", AdminURL(), up, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgCtlCluster runs Debian's pg_ctlcluster on the machine's only cluster
// version (the directory under /etc/postgresql).
func pgCtlCluster(t testing.TB, action string) {
	t.Helper()
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) != 1 {
		t.Fatalf("testdb: want one PostgreSQL version under /etc/postgresql, got %d (%v)", len(versions), err)
	}
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", action).CombinedOutput() //nolint:noctx,gosec // the CI start command
	if err != nil {
		t.Fatalf("testdb: pg_ctlcluster %s: %v\n%s", action, err, out)
	}
}

func reachable() bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return false
	}
	_ = conn.Close(ctx)
	return true
}
