package e2e

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// TestPostgresRestartUnderLoad stops PostgreSQL for 3 s while clients create,
// read and PATCH orders, with DATABASE_URL on PostgreSQL itself and, the
// same body, through PgBouncer in transaction pooling (MIGRATION_DATABASE_URL
// direct, PgBouncer's server_login_retry 1 s). While it is down, requests that
// need it answer 503 with Retry-After and a problem body, never another 5xx,
// and every request is answered; once it is back creates succeed again by
// themselves, and every order is processed exactly once. The PostgreSQL is
// the test's own (testdb.NewCluster), so no other test notices the outage.
func TestPostgresRestartUnderLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		throughPB bool
	}{{"direct", false}, {"through PgBouncer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := testdb.NewCluster(t)
			direct := cluster.URL("orders") // created by the migrator at start
			env := map[string]string{"RATE_LIMIT_ENABLED": "false", "CACHE_TTL": "5m"}
			dbURL := direct
			if tc.throughPB {
				dbURL = testdb.StartPgBouncer(t, direct, 4).URL("cache_describe")
				env["MIGRATION_DATABASE_URL"] = direct
			}
			postgresRestartUnderLoad(t, cluster, dbURL, direct, env)
		})
	}
}

// postgresRestartUnderLoad runs the system on dbURL (direct: the same
// database without a pooler, for the test's own reads), stops cluster
// under load and starts it again, and checks what the clients were told
// against the database.
func postgresRestartUnderLoad(t *testing.T, cluster *testdb.Cluster, dbURL, direct string, env map[string]string) {
	t.Helper()
	topo := testamqp.Namespace(t)
	sys := newSystem(t, dbURL, topo, env)
	load := newChaosLoad(t, sys, 4)

	ctx, stopLoad := context.WithCancel(t.Context())
	defer stopLoad()
	start := time.Now()
	var loadDone sync.WaitGroup
	loadDone.Go(func() { paced(ctx, -1, 30, 4, load.create) })
	loadDone.Go(func() { paced(ctx, -1, 20, 2, load.read) })

	time.Sleep(3 * time.Second)
	stopped := time.Now()
	cluster.Stop()
	time.Sleep(3 * time.Second)
	cluster.Start()
	restarted := time.Now()
	window := chaosWindow{kind: faultPostgres, start: stopped, until: restarted.Add(recoveryGrace)}
	var recovered time.Duration
	require.Eventually(t, func() bool {
		load.mu.Lock()
		defer load.mu.Unlock()
		for _, c := range load.calls {
			if c.op == opCreate && c.status == http.StatusCreated && c.start.After(restarted) {
				recovered = c.end.Sub(restarted)
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "creates succeed again once PostgreSQL is back")
	time.Sleep(3 * time.Second) // orders keep coming after the outage
	stopLoad()
	loadDone.Wait()

	pool := openPool(t, direct)
	drain, drained := waitDrained(t.Context(), pool, 60*time.Second)
	require.True(t, drained, "every order processed and every event forwarded within 60 s of the load (waited %.1f s)", drain)
	load.mu.Lock()
	calls := append([]chaosCall(nil), load.calls...)
	load.mu.Unlock()
	audit := auditOrders(t, pool, topo, start, calls, []*proc.Proc{sys.workers})

	var unavailable, outside, other, unsignalled, noAnswer, unexpected int
	for _, c := range calls {
		switch {
		case c.status == 0:
			noAnswer++
		case c.status == http.StatusServiceUnavailable && window.covers(c):
			unavailable++
			if !c.signalled {
				unsignalled++
			}
		case c.status >= http.StatusInternalServerError && window.covers(c):
			other++
		case c.status >= http.StatusInternalServerError:
			outside++
		case c.status != expectedStatus[c.op]:
			unexpected++
		}
	}
	t.Logf("%d requests, %s; PostgreSQL down 3 s: %d answers 503, first create %s after it was back; "+
		"%d orders (%d answered 201, %d committed as their answer was cut), lost %d, applied twice %d, redelivered tasks absorbed %d, drained %.1f s after the load",
		len(calls), formatCounts(countStatuses(calls)[opCreate]), unavailable, recovered.Round(time.Millisecond),
		audit.Orders, audit.Created, audit.Without201, audit.Lost, audit.AppliedTwice, audit.Redelivered, drain)
	require.Positive(t, unavailable, "requests that need PostgreSQL answer 503 while it is down")
	require.Zero(t, unsignalled, "every 503 says when to retry, in a problem body")
	require.Zero(t, other, "only 503 while PostgreSQL is down, never a 500")
	require.Zero(t, outside, "no 5xx before the outage or after it was over")
	require.Zero(t, noAnswer, "every request answered")
	require.Zero(t, unexpected, "no other status: %v", countStatuses(calls))
	require.Zero(t, audit.Missing+audit.Lost+audit.Unprocessed, "nothing lost")
	require.Zero(t, audit.AppliedTwice+audit.NotApplied+audit.StrayInbox, "one task applied per order")
	require.Zero(t, audit.EventsNotOne)
	require.Zero(t, audit.LoggedTwice)
	require.Zero(t, audit.DeadLetters)
}
