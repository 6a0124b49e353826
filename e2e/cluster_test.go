package e2e

import (
	"context"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// On a 3-node RabbitMQ cluster with quorum queues, the node leading the
// queues stops under load and starts again: every order is processed
// exactly once, nothing is lost, the API never fails a request.
// ORDERS_CLUSTER_LONG=1 runs ten times the orders.
func TestQuorumQueuesSurviveTheLeaderNodeStopping(t *testing.T) {
	t.Parallel()
	orders, rate := 240, 30.0
	if os.Getenv("ORDERS_CLUSTER_LONG") == "1" {
		orders = 2400
	}
	bootStart := time.Now()
	cluster := testamqp.StartCluster(t, 3)
	t.Logf("cluster of 3 nodes up and joined in %s", time.Since(bootStart).Round(100*time.Millisecond))
	topo := cluster.Namespace()
	dbURL := testdb.New(t)
	pool, err := pgxpool.New(context.Background(), dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	sys := newSystem(t, dbURL, topo, map[string]string{
		"AMQP_QUEUE_TYPE":    messaging.QuorumQueues,
		"RATE_LIMIT_ENABLED": "false", // the load, not the budgets, is under test
	})
	load := newChaosLoad(t, sys, 8)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		paced(ctx, orders, rate, 8, load.create)
	}()

	// A third of the way in, stop the node leading the task queue; start it
	// again a few seconds later.
	time.Sleep(time.Duration(float64(orders) / rate / 3 * float64(time.Second)))
	taskQueue := topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))
	leader := cluster.Leader(t, taskQueue, nil)
	stoppedAt := time.Now()
	cluster.Stop(t, leader)
	newLeader := cluster.Leader(t, taskQueue, leader)
	t.Logf("stopped %s (leader of %s); new leader %s", leader.Name, taskQueue, newLeader.Name)
	require.NotEqual(t, leader, newLeader)
	time.Sleep(5 * time.Second)
	cluster.Start(t, leader)
	t.Logf("%s back after %s", leader.Name, time.Since(stoppedAt).Round(100*time.Millisecond))
	<-loadDone

	drain, ok := waitDrained(ctx, pool, 60*time.Second)
	require.True(t, ok, "every order processed and every event forwarded within 60 s (waited %.1f s)", drain)
	audit := auditOrders(t, pool, topo, start, load.calls, []*proc.Proc{sys.workers})

	statuses := map[int]int{}
	for _, c := range load.calls {
		statuses[c.status]++
		require.Equal(t, http.StatusCreated, c.status, "create answered %d %s", c.status, c.err)
	}
	gap := longestPause(t, pool, stoppedAt)
	t.Logf("orders %d, statuses %v, lost %d, applied twice %d, redelivered tasks absorbed %d, dead letters %d, "+
		"longest pause in processing after the stop %s, drained %.1f s after the load",
		audit.Orders, statuses, audit.Lost, audit.AppliedTwice, audit.Redelivered, audit.DeadLetters, gap.Round(10*time.Millisecond), drain)
	require.Equal(t, orders, audit.Created)
	require.Equal(t, orders, audit.Orders)
	require.Zero(t, audit.Missing+audit.Lost+audit.Unprocessed, "nothing lost")
	require.Zero(t, audit.AppliedTwice, "nothing applied twice")
	require.Zero(t, audit.NotApplied)
	require.Zero(t, audit.LoggedTwice)
	require.Zero(t, audit.DeadLetters)
}

// longestPause is the longest time after since during which no order was
// processed, up to the last one.
func longestPause(t *testing.T, pool *pgxpool.Pool, since time.Time) time.Duration {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT processed_at FROM orders WHERE processed_at >= $1", since)
	require.NoError(t, err)
	var at []time.Time
	for rows.Next() {
		var ts time.Time
		require.NoError(t, rows.Scan(&ts))
		at = append(at, ts)
	}
	require.NoError(t, rows.Err())
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	prev, longest := since, time.Duration(0)
	for _, ts := range at {
		longest = max(longest, ts.Sub(prev))
		prev = ts
	}
	return longest
}
