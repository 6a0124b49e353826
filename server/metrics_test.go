package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

// TestMetricsShowRequestsCacheAndRateLimits: /metrics counts requests by
// route template, cache reads by outcome and 429s by budget.
func TestMetricsShowRequestsCacheAndRateLimits(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"CACHE_TTL": "5m", "RATE_LIMIT_ANONYMOUS": "2/1m"}, nil)
	u := newUser(t, s)
	o := newOrder(t, s, u, item(1, 2, "2.90"))
	markProcessed(t, s.DBURL, o.Id) // the cache holds processed orders
	getOrder(t, s, u, o.Id)
	getOrder(t, s, u, o.Id)
	for range 3 { // anonymous budget of 2: the third is refused
		_ = s.do(t, "GET", "/orders/"+o.Id.String()+"/", "", nil, "")
	}

	body := scrapeMetrics(t, s.URL)
	require.Contains(t, body, `orders_http_requests_total{method="POST",route="/orders/",status="201"} 1`)
	require.Contains(t, body, `orders_http_requests_total{method="GET",route="/orders/:order_id/",status="200"} 2`)
	require.Contains(t, body, `orders_cache_reads_total{outcome="miss"} 1`, "the first read fills the cache")
	require.Contains(t, body, `orders_cache_reads_total{outcome="hit"} 1`, "the second hits")
	require.Contains(t, body, `orders_rate_limited_total{bucket="anonymous"} 1`)
	require.Contains(t, body, `orders_http_request_duration_seconds_bucket{method="POST",route="/orders/"`)
	require.Contains(t, body, `orders_db_pool_connections{state="idle"}`)
	require.Contains(t, body, "orders_redis_circuit_open 0")
	require.Contains(t, body, `orders_redis_circuit_checks_total{outcome="answered"}`)
}

func scrapeMetrics(t *testing.T, base string) string { return testhttp.Get(t, base+"/metrics") }
