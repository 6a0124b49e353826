package testdb

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ordersvc/orders/internal/testkit/ports"
)

// PgBouncerPath is Debian's PgBouncer, installed by .ci/install-pgbouncer.
const PgBouncerPath = "/usr/sbin/pgbouncer"

// PgBouncer is a PgBouncer of one test's own, in transaction pooling mode on
// a free port, in front of the database of the URL it was started for.
type PgBouncer struct {
	t      testing.TB
	dir    string // ini, auth file and log
	port   int
	dbName string
	user   string
	cmd    *exec.Cmd
	done   chan struct{}
}

// StartPgBouncer runs PgBouncer (pool_mode=transaction, at most poolSize
// server connections) in front of the database of dbURL, and stops it when
// t ends. The test fails, with the command that installs it, when PgBouncer
// is missing. As root it runs as user postgres: PgBouncer refuses root.
func StartPgBouncer(t testing.TB, dbURL string, poolSize int) *PgBouncer {
	t.Helper()
	if _, err := os.Stat(PgBouncerPath); err != nil {
		t.Fatalf("testdb: PgBouncer is required for this test (%v); install it with .ci/install-pgbouncer", err)
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	dir, err := os.MkdirTemp("", "orders-pgbouncer-")
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	b := &PgBouncer{t: t, dir: dir, port: ports.Free(t), dbName: strings.TrimPrefix(u.Path, "/"), user: u.User.Username()}
	// Trust on both sides, as the local PostgreSQL: the auth file only
	// names the user PgBouncer lets in.
	ini := fmt.Sprintf(`[databases]
%[1]s = host=%[2]s port=%[3]s dbname=%[1]s user=%[4]s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %[5]d
unix_socket_dir =
auth_type = trust
auth_file = %[6]s
pool_mode = transaction
default_pool_size = %[7]d
max_client_conn = 200
logfile = %[8]s
server_login_retry = 1
query_wait_timeout = 10
admin_users = %[4]s
`, b.dbName, host, port, b.user, b.port, filepath.Join(dir, "users.txt"), poolSize, filepath.Join(dir, "pgbouncer.log"))
	b.write("pgbouncer.ini", ini)
	b.write("users.txt", fmt.Sprintf("%q \"\"\n", b.user))
	if os.Geteuid() == 0 {
		chownToPostgres(t, dir, filepath.Join(dir, "pgbouncer.ini"), filepath.Join(dir, "users.txt"))
	}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// URL is the connection URL of the database through PgBouncer, with
// default_query_exec_mode=mode unless mode is empty (pgx's default then).
func (b *PgBouncer) URL(mode string) string {
	u := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", b.user, b.port, b.dbName)
	if mode != "" {
		u += "&default_query_exec_mode=" + mode
	}
	return u
}

// Start starts PgBouncer (again, on the same port) and waits until it
// accepts connections.
func (b *PgBouncer) Start() {
	b.t.Helper()
	args := []string{filepath.Join(b.dir, "pgbouncer.ini")}
	if os.Geteuid() == 0 {
		args = append([]string{"-u", "postgres"}, args...)
	}
	cmd := exec.Command(PgBouncerPath, args...) //nolint:noctx // stopped by a signal in Stop
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("testdb: start pgbouncer: %v", err)
	}
	b.cmd, b.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(b.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := new(net.Dialer).DialContext(context.Background(), "tcp", "127.0.0.1:"+strconv.Itoa(b.port))
		if err == nil {
			_ = conn.Close()
			return
		}
		select {
		case <-b.done:
			b.t.Fatalf("testdb: pgbouncer exited at start:\n%s", b.Log())
		default:
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("testdb: pgbouncer does not listen on port %d after 10s:\n%s", b.port, b.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts PgBouncer down at once (SIGTERM: immediate shutdown, every
// client connection dropped), as a crash or a restart of the pooler does.
// No-op when it is not running.
func (b *PgBouncer) Stop() {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
	b.cmd = nil
}

// Log is PgBouncer's log so far.
func (b *PgBouncer) Log() string {
	log, _ := os.ReadFile(filepath.Join(b.dir, "pgbouncer.log"))
	return string(log)
}

func (b *PgBouncer) write(name, content string) {
	b.t.Helper()
	if err := os.WriteFile(filepath.Join(b.dir, name), []byte(content), 0o600); err != nil {
		b.t.Fatalf("testdb: %v", err)
	}
}

// chownToPostgres hands paths to user postgres, which the PostgreSQL and
// PgBouncer processes the tests start as root run as.
func chownToPostgres(t testing.TB, paths ...string) {
	t.Helper()
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("testdb: running as root needs a postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, path := range paths {
		if err := os.Chown(path, uid, gid); err != nil {
			t.Fatalf("testdb: %v", err)
		}
	}
}
