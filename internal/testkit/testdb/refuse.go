package testdb

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RefuseConnections makes the database of dbURL unreachable the way a
// PostgreSQL shutdown makes it for the processes using it, without touching
// the shared server: new connections are refused and the open ones are
// ended, and it returns once none is left. The returned function (also run
// when t ends) lets connections in again.
func RefuseConnections(t testing.TB, dbURL string) (reopen func()) {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	ident := pgx.Identifier{name}.Sanitize()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin(ctx, "ALTER DATABASE "+ident+" ALLOW_CONNECTIONS false"); err != nil {
		t.Fatalf("testdb: refuse connections to %s: %v", name, err)
	}
	var once sync.Once
	reopen = func() {
		once.Do(func() {
			if err := admin(context.Background(), "ALTER DATABASE "+ident+" ALLOW_CONNECTIONS true"); err != nil {
				t.Errorf("testdb: allow connections to %s: %v", name, err)
			}
		})
	}
	t.Cleanup(reopen)
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	defer conn.Close(context.Background()) //nolint:errcheck // nothing to do about it
	for {
		var left int
		err := conn.QueryRow(ctx, `
			WITH killed AS (
				SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()
			)
			SELECT count(*) FROM killed`, name).Scan(&left)
		if err == nil && left == 0 {
			return reopen
		}
		if ctx.Err() != nil {
			t.Fatalf("testdb: connections to %s did not end: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
