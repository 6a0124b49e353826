package messaging_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/messaging"
)

// The names operators see (README, deploy/, the dlq commands) come out of
// the table unchanged: renaming a queue strands the messages in the old one.
func TestTopologyNames(t *testing.T) {
	t.Parallel()
	topo := messaging.Topology{Namespace: "orders"}
	require.Equal(t, []string{
		"orders.new_order.start_processing",
		"orders.order_status_changed.status_log",
		"orders.process_order",
		"orders.dead_letters",
	}, topo.Queues())
	require.Equal(t, []string{"orders.new_order", "orders.order_status_changed"}, topo.Exchanges())

	task := messaging.RouteOf(messaging.ProcessOrderHandler)
	require.Empty(t, topo.Exchange(task), "tasks go through the default exchange")
	require.Equal(t, "orders.process_order", topo.RoutingKey(task))
	event := messaging.RouteOf(messaging.StartProcessingHandler)
	require.Equal(t, "orders.new_order", topo.Exchange(event))
	require.Empty(t, topo.RoutingKey(event), "a fanout exchange ignores the key")
}

func TestInstancesAreNamedAfterTheirRoute(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"process_order_0", "process_order_1", "process_order_2"},
		messaging.RouteOf(messaging.ProcessOrderHandler).Instances(3))
	require.Equal(t, []string{"status_log"}, messaging.RouteOf(messaging.StatusLogHandler).Instances(3),
		"a route without a concurrency setting runs one instance")
}

func TestConsumersOfATopic(t *testing.T) {
	t.Parallel()
	for _, r := range messaging.Routes {
		require.Contains(t, messaging.Consumers(r.Topic), r)
	}
	require.Empty(t, messaging.Consumers("no_such_topic"))
	_, ok := messaging.Lookup("no_such_handler")
	require.False(t, ok)
}
