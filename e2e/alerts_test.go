package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oasdiff/yaml"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// prometheusPath is Debian's Prometheus, installed by .ci/install-prometheus.
const prometheusPath = "/usr/bin/prometheus"

// TestOutboxAlertFiresAndResolves runs a real Prometheus with the shipped
// configuration and rules (its targets pointed at this test's API and
// workers, scraping and evaluating every second) and, as an operator
// would: once an order went through, every dashboard query returns series;
// with RabbitMQ stopped and an
// order waiting in the outbox, OrdersOutboxStale goes pending then firing;
// with RabbitMQ back, the order is processed and the alert resolves.
func TestOutboxAlertFiresAndResolves(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(prometheusPath); err != nil {
		t.Fatalf("Prometheus is required for this test (%v); install it with .ci/install-prometheus", err)
	}
	topo := testamqp.Outage(t)
	sys := newSystem(t, testdb.New(t), topo, nil)
	prom := startPrometheus(t, map[string]string{
		"orders-api":     sys.api.Addr(process.HTTPAddr),
		"orders-workers": sys.workers.Addr(process.WorkersHTTPAddr),
	})
	auth := sys.login()
	pool := openPool(t, sys.dbURL)

	require.Eventually(t, func() bool { return len(prom.query(`up{job=~"orders-.*"} == 1`)) == 2 }, 30*time.Second, 500*time.Millisecond,
		"Prometheus scrapes the API and the workers")
	first, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, first.StatusCode(), string(first.Body))
	waitAllProcessed(t, pool, []uuid.UUID{first.JSON201.Id}, 30*time.Second)
	time.Sleep(3 * time.Second) // a few samples after the order for the rates
	for _, expr := range dashboardQueries(t) {
		require.NotEmpty(t, prom.query(expr), "dashboard query %q returns no series", expr)
	}
	require.Empty(t, prom.alerts(), "no alert while everything runs")

	testamqp.Stop(t)
	stopped := time.Now()
	resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))

	var states []string
	require.Eventually(t, func() bool {
		state := prom.alerts()["OrdersOutboxStale"]
		if state != "" && (len(states) == 0 || states[len(states)-1] != state) {
			states = append(states, state)
		}
		return state == "firing"
	}, 2*time.Minute, time.Second, "OrdersOutboxStale fires while RabbitMQ is down")
	firedAfter := time.Since(stopped)
	require.Equal(t, []string{"pending", "firing"}, states)
	// 30 s above the threshold of 30 s: never before a minute.
	require.Greater(t, firedAfter, time.Minute, "fired before the threshold and its `for` passed")

	testamqp.Start(t)
	restarted := time.Now()
	require.Eventually(t, func() bool { return prom.alerts()["OrdersOutboxStale"] == "" }, time.Minute, time.Second,
		"OrdersOutboxStale resolves once RabbitMQ is back")
	resolvedAfter := time.Since(restarted)
	// After an outage of over a minute, the workers' consumers are back
	// within messaging.MaxReconnectInterval (and its jitter) of the broker.
	waitAllProcessed(t, pool, []uuid.UUID{resp.JSON201.Id}, 2*messaging.MaxReconnectInterval+5*time.Second)
	t.Logf("OrdersOutboxStale fired %.0fs after RabbitMQ stopped and resolved %.0fs after it was back; the order was processed %.1fs after it was back",
		firedAfter.Seconds(), resolvedAfter.Seconds(), time.Since(restarted).Seconds())
}

// promServer is a Prometheus process of a test.
type promServer struct {
	t    *testing.T
	base string
}

// startPrometheus runs Prometheus with deploy/prometheus/prometheus.yml,
// each job's targets replaced by the address given for it, and its rules.
func startPrometheus(t *testing.T, targets map[string]string) *promServer {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("../deploy/prometheus/prometheus.yml")
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(data)
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(js, &cfg))
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	var rules []any
	for _, r := range cfg["rule_files"].([]any) {
		abs, err := filepath.Abs(filepath.Join("../deploy/prometheus", r.(string)))
		require.NoError(t, err)
		rules = append(rules, abs)
	}
	cfg["rule_files"] = rules
	jobs := cfg["scrape_configs"].([]any)
	require.Len(t, jobs, len(targets))
	for _, j := range jobs {
		job := j.(map[string]any)
		addr, ok := targets[job["job_name"].(string)]
		require.True(t, ok, "no target for job %v", job["job_name"])
		job["static_configs"] = []any{map[string]any{"targets": []string{addr}}}
	}
	out, err := json.Marshal(cfg) // JSON is YAML
	require.NoError(t, err)
	config := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(config, out, 0o600))

	addr := freeAddr(t)
	cmd := exec.Command(prometheusPath, //nolint:noctx // stopped by a signal in the cleanup
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn")
	logs := testlog.NewSink()
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	p := &promServer{t: t, base: "http://" + addr}
	require.Eventually(t, func() bool {
		r, err := http.Get(p.base + "/-/ready") //nolint:noctx // a local probe
		if err != nil {
			return false
		}
		_ = r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, 30*time.Second, 200*time.Millisecond, "Prometheus ready:\n%s", logs.String())
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func (p *promServer) get(path string, v any) {
	p.t.Helper()
	r, err := http.Get(p.base + path) //nolint:noctx // a local API call
	require.NoError(p.t, err)
	defer r.Body.Close()
	require.Equal(p.t, http.StatusOK, r.StatusCode, path)
	var body struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
		Error  string          `json:"error"`
	}
	require.NoError(p.t, json.NewDecoder(r.Body).Decode(&body))
	require.Equal(p.t, "success", body.Status, body.Error)
	require.NoError(p.t, json.Unmarshal(body.Data, v))
}

// query returns the series of an instant query.
func (p *promServer) query(expr string) []json.RawMessage {
	p.t.Helper()
	var data struct {
		Result []json.RawMessage `json:"result"`
	}
	p.get("/api/v1/query?query="+url.QueryEscape(expr)+"&time="+strconv.FormatInt(time.Now().Unix(), 10), &data)
	return data.Result
}

// alerts returns the active alerts' states (pending or firing) by name.
func (p *promServer) alerts() map[string]string {
	p.t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	p.get("/api/v1/alerts", &data)
	out := map[string]string{}
	for _, a := range data.Alerts {
		out[a.Labels["alertname"]] = a.State
	}
	return out
}
