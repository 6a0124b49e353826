package testdb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordersvc/orders/internal/testkit/ports"
)

// Cluster is a PostgreSQL server of one test's own, on a free port, for the
// tests that restart or stop PostgreSQL: doing that to the shared server
// would break every other test running on the machine.
type Cluster struct {
	t    testing.TB
	bin  string // directory of initdb and pg_ctl
	dir  string // data directory, socket and log
	port int
}

// NewCluster initialises and starts a cluster with trust authentication for
// user postgres, stopped when t ends. It needs the PostgreSQL server binaries
// (PG_BINDIR, else pg_config --bindir); as root it runs them as user postgres,
// since PostgreSQL refuses to run as root.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := os.Getenv("PG_BINDIR")
	if bin == "" {
		out, err := exec.Command("pg_config", "--bindir").Output() //nolint:noctx // a short local command
		if err != nil {
			t.Fatalf("testdb: pg_config --bindir: %v (set PG_BINDIR to the directory of initdb and pg_ctl)", err)
		}
		bin = strings.TrimSpace(string(out))
	}
	dir, err := os.MkdirTemp("", "orders-pgcluster-")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c := &Cluster{t: t, bin: bin, dir: dir, port: ports.Free(t)}
	if os.Geteuid() == 0 {
		chownToPostgres(t, dir)
	}
	c.run("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "--no-sync")
	c.Start()
	t.Cleanup(func() {
		if c.running() {
			c.pgCtl("stop", "-m", "immediate")
		}
	})
	return c
}

// URL is the connection URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, name)
}

// Start starts the cluster and waits until it accepts connections.
func (c *Cluster) Start() {
	c.t.Helper()
	c.pgCtl("start", "-l", filepath.Join(c.dir, "log"),
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir))
}

// Stop shuts the cluster down in fast mode, as an operator's restart does:
// open sessions are terminated (SQLSTATE 57P01), new ones refused.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.pgCtl("stop", "-m", "fast")
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

// running reports whether the cluster runs: its postmaster.pid exists.
func (c *Cluster) running() bool {
	_, err := os.Stat(filepath.Join(c.data(), "postmaster.pid"))
	return err == nil
}

func (c *Cluster) pgCtl(args ...string) {
	c.t.Helper()
	c.run("pg_ctl", append([]string{"-D", c.data(), "-w"}, args...)...)
}

func (c *Cluster) run(tool string, args ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	path := filepath.Join(c.bin, tool)
	cmd := exec.CommandContext(ctx, path, args...)
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...) //nolint:gosec // test tool paths
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.t.Fatalf("testdb: %s %s: %v\n%s\nserver log:\n%s", tool, strings.Join(args, " "), err, out, log)
	}
}
