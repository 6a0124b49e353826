package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

// TestReadyGaugeFollowsTheProbe: orders_ready is what /ready would say, at
// each scrape: 1 while PostgreSQL answers, 0 once it refuses the API.
func TestReadyGaugeFollowsTheProbe(t *testing.T) {
	t.Parallel()
	ts := startServer(t, nil)
	require.InDelta(t, 1, testhttp.Metric(testhttp.Get(t, ts.URL+"/metrics"), "orders_ready"), 0)
	testdb.RefuseConnections(t, ts.DBURL)
	require.InDelta(t, 0, testhttp.Metric(testhttp.Get(t, ts.URL+"/metrics"), "orders_ready"), 0)
}
