// Package prometheus_test checks the shipped Prometheus configuration and
// alert rules with Debian's promtool (installed by .ci/install-prometheus).
package prometheus_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"testing"

	"github.com/oasdiff/yaml"
	"github.com/stretchr/testify/require"
)

// promtoolPath is Debian's promtool, installed by .ci/install-prometheus.
const promtoolPath = "/usr/bin/promtool"

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := os.Stat(promtoolPath); err != nil {
		t.Fatalf("promtool is required for this test (%v); install it with .ci/install-prometheus", err)
	}
	out, err := exec.CommandContext(t.Context(), promtoolPath, args...).CombinedOutput()
	require.NoError(t, err, "promtool %v:\n%s", args, out)
	return string(out)
}

// TestConfigIsValid checks prometheus.yml and the rule files it names.
func TestConfigIsValid(t *testing.T) {
	t.Parallel()
	out := promtool(t, "check", "config", "prometheus.yml")
	require.Contains(t, out, "SUCCESS: 1 rule files found")
}

// TestAlertRules runs the rule unit tests of alerts_test.yml: each alert
// stays quiet below its threshold, fires after its `for`, and resolves.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	out := promtool(t, "test", "rules", "alerts_test.yml")
	require.Contains(t, out, "SUCCESS")
}

// TestEveryAlertIsTested: every rule of alerts.yml is seen firing in
// alerts_test.yml, so a new rule cannot ship without its test.
func TestEveryAlertIsTested(t *testing.T) {
	t.Parallel()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
			} `json:"rules"`
		} `json:"groups"`
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, "alerts.yml", &rules)
	readYAML(t, "alerts_test.yml", &tests)

	var fired []string
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fired = append(fired, a.Alertname)
			}
		}
	}
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			require.True(t, slices.Contains(fired, r.Alert), "alert %s is never seen firing in alerts_test.yml", r.Alert)
		}
	}
	require.NotEmpty(t, alerts)
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(data)
	require.NoError(t, err, name)
	require.NoError(t, json.Unmarshal(js, v), name)
}
