package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/oasdiff/yaml"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

const (
	dashboardFile = "../deploy/grafana/dashboards/orders.json"
	alertsFile    = "../deploy/prometheus/alerts.yml"
	// promqlnames parses PromQL with Prometheus's parser; it is a module of
	// its own to keep github.com/prometheus/prometheus out of go.mod.
	promqlNamesDir = "../deploy/grafana/promqlnames"
)

// prometheusOwn are the series Prometheus adds to every scrape itself.
var prometheusOwn = []string{"up"}

// TestDashboardQueriesNameRealMetrics: every query of the Grafana dashboard
// and every alert rule parses with Prometheus's PromQL parser, and names
// only metrics the API and the workers expose (scraped here after an order
// went through both).
func TestDashboardQueriesNameRealMetrics(t *testing.T) {
	t.Parallel()
	sys := newSystem(t, testdb.New(t), testamqp.Namespace(t), nil)
	auth := sys.login()
	resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
	got, err := sys.client.GetOrderWithResponse(context.Background(), resp.JSON201.Id, nil, auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, got.StatusCode())
	waitAllProcessed(t, openPool(t, sys.dbURL), []uuid.UUID{resp.JSON201.Id}, 30*time.Second)

	exposed := map[string]bool{}
	for _, name := range prometheusOwn {
		exposed[name] = true
	}
	for _, url := range []string{
		sys.api.URL(process.HTTPAddr) + "/metrics",
		sys.workers.URL(process.WorkersHTTPAddr) + "/metrics",
	} {
		for _, name := range sampleNames(testhttp.Get(t, url)) {
			exposed[name] = true
		}
	}

	exprs := append(dashboardQueries(t), alertExprs(t)...)
	require.Greater(t, len(exprs), 20)
	for _, r := range parsePromQL(t, exprs) {
		require.Empty(t, r.Error, "query %q", r.Expr)
		require.NotEmpty(t, r.Metrics, "query %q names no metric", r.Expr)
		for _, m := range r.Metrics {
			require.True(t, exposed[m], "query %q names %s, which neither process exposes", r.Expr, m)
		}
	}
}

// dashboardQueries returns the expressions of the dashboard's panels with
// Grafana's interval variable replaced by a duration.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(data, &dash))
	var exprs []string
	for _, p := range dash.Panels {
		for _, target := range p.Targets {
			require.NotEmpty(t, target.Expr, "panel %q", p.Title)
			exprs = append(exprs, strings.ReplaceAll(target.Expr, "$__rate_interval", "1m"))
		}
	}
	return exprs
}

func alertExprs(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(data)
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	require.NoError(t, json.Unmarshal(js, &rules))
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	return exprs
}

type parsedQuery struct {
	Expr    string   `json:"expr"`
	Metrics []string `json:"metrics"`
	Error   string   `json:"error"`
}

func parsePromQL(t *testing.T, exprs []string) []parsedQuery {
	t.Helper()
	in, err := json.Marshal(exprs)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), "go", "run", ".")
	cmd.Dir = promqlNamesDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "promqlnames: %s", stderr.String())
	var parsed []parsedQuery
	require.NoError(t, json.Unmarshal(out, &parsed))
	require.Len(t, parsed, len(exprs))
	return parsed
}

// sampleNames returns the sample names of a text exposition (histograms'
// _bucket, _sum and _count included).
func sampleNames(body string) []string {
	var names []string
	for line := range strings.Lines(body) {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}
