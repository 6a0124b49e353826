package cache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersvc/orders/internal/metrics"
)

var (
	circuitOpenDesc = prometheus.NewDesc(metrics.Namespace+"_redis_circuit_open",
		"1 while the Redis circuit breaker is open (requests skip Redis), 0 while it is closed.", nil, nil)
	circuitOpeningsDesc = prometheus.NewDesc(metrics.Namespace+"_redis_circuit_openings_total",
		"Times the Redis circuit breaker opened.", nil, nil)
	circuitChecksDesc = prometheus.NewDesc(metrics.Namespace+"_redis_circuit_checks_total",
		"Checks after consecutive failed Redis calls, by outcome: answered (Redis is up; the calls were slow here) or failed (the breaker opened).",
		[]string{"outcome"}, nil)
)

// Collector exposes the breaker's state at scrape time.
func (r *Redis) Collector() prometheus.Collector { return breakerCollector{r.breaker} }

type breakerCollector struct{ b *breaker }

func (c breakerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- circuitOpenDesc
	ch <- circuitOpeningsDesc
	ch <- circuitChecksDesc
}

func (c breakerCollector) Collect(ch chan<- prometheus.Metric) {
	open := 0.0
	if !c.b.allow() {
		open = 1
	}
	ch <- prometheus.MustNewConstMetric(circuitOpenDesc, prometheus.GaugeValue, open)
	ch <- prometheus.MustNewConstMetric(circuitOpeningsDesc, prometheus.CounterValue, float64(c.b.openings.Load()))
	ch <- prometheus.MustNewConstMetric(circuitChecksDesc, prometheus.CounterValue, float64(c.b.checksAnswered.Load()), "answered")
	ch <- prometheus.MustNewConstMetric(circuitChecksDesc, prometheus.CounterValue, float64(c.b.checksFailed.Load()), "failed")
}
