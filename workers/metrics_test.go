package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

func TestMetricsFollowAnOrderThroughThePipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)
	o := e.createOrder()
	e.waitProcessed(o.ID, 20*time.Second)

	body := scrape(t, w)
	require.Contains(t, body, `orders_handler_attempts_total{handler="process_order",outcome="ok"} 1`)
	require.Contains(t, body, `orders_handler_attempts_total{handler="start_processing",outcome="ok"} 1`)
	require.Contains(t, body, "orders_order_processing_latency_seconds_count 1")
	require.Contains(t, body, "orders_outbox_pending 0")
	require.Contains(t, body, "orders_outbox_scrape_ok 1")
	require.Contains(t, body, `orders_db_pool_connections{state="idle"}`)
}

func TestMetricsCountDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(nil)
	ch := e.amqpChannel()
	require.NoError(t, ch.PublishWithContext(context.Background(), "", e.topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler)), false, false,
		publishing([]byte("not json"))))
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(t, w), `orders_dead_lettered_total{handler="process_order"} 1`)
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, scrape(t, w), `orders_handler_attempts_total{handler="process_order",outcome="error"} 1`, "undecodable: one attempt, no retry")
}

func scrape(t *testing.T, w *workersProc) string { return testhttp.Get(t, "http://"+w.addr+"/metrics") }
