package orders

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/oasdiff/yaml"
	"github.com/stretchr/testify/require"
)

// loadComposeProfiles loads compose.yaml as `docker compose --profile ...`.
func loadComposeProfiles(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"compose.yaml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnv([]string{"JWT_SECRET=" + composeJWTSecret}),
		cli.WithProfiles(profiles),
	)
	require.NoError(t, err)
	p, err := opts.LoadProject(t.Context())
	require.NoError(t, err)
	return p
}

// bindMounts maps a service's container paths to the host directories
// mounted there.
func bindMounts(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind {
			out[v.Target] = v.Source
		}
	}
	return out
}

func readYAMLFile(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(data)
	require.NoError(t, err, name)
	require.NoError(t, json.Unmarshal(js, v), name)
}

// TestComposeObservabilityProfile: `--profile observability` adds
// Prometheus, scraping the api and workers services at the ports they
// listen on with the shipped rules, and Grafana with the Prometheus
// datasource and the dashboard provisioned; without it neither runs.
func TestComposeObservabilityProfile(t *testing.T) {
	t.Parallel()
	plain := loadComposeProfiles(t)
	require.NotContains(t, plain.ServiceNames(), "prometheus", "only with the profile")
	require.NotContains(t, plain.ServiceNames(), "grafana", "only with the profile")

	p := loadComposeProfiles(t, "observability")
	require.Subset(t, p.ServiceNames(), []string{"api", "workers", "prometheus", "grafana"})
	for _, name := range []string{"prometheus", "grafana"} {
		for _, v := range service(t, p, name).Volumes {
			if v.Type == types.VolumeTypeVolume {
				require.Contains(t, p.Volumes, v.Source, "%s mounts an undeclared volume", name)
			}
		}
		for _, port := range service(t, p, name).Ports {
			require.Equal(t, "127.0.0.1", port.HostIP, "%s is published on the loopback only", name)
		}
	}

	t.Run("prometheus", func(t *testing.T) {
		prom := service(t, p, "prometheus")
		configDir, ok := bindMounts(prom)["/etc/prometheus"]
		require.True(t, ok, "deploy/prometheus is mounted at /etc/prometheus")
		require.Contains(t, prom.Command, "--config.file=/etc/prometheus/prometheus.yml")
		var cfg struct {
			RuleFiles     []string `json:"rule_files"`
			ScrapeConfigs []struct {
				JobName       string `json:"job_name"`
				StaticConfigs []struct {
					Targets []string `json:"targets"`
				} `json:"static_configs"`
			} `json:"scrape_configs"`
		}
		readYAMLFile(t, filepath.Join(configDir, "prometheus.yml"), &cfg)
		for _, rules := range cfg.RuleFiles {
			require.FileExists(t, filepath.Join(configDir, rules))
		}
		// Each job scrapes the service it is named after, at the address
		// that service's process listens on.
		listen := map[string]string{"api": "HTTP_ADDR", "workers": "WORKERS_HTTP_ADDR"}
		var scraped []string
		for _, sc := range cfg.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					host, port, err := net.SplitHostPort(target)
					require.NoError(t, err)
					env, ok := listen[host]
					require.True(t, ok, "job %s scrapes %s, not the api or workers service", sc.JobName, target)
					require.Equal(t, "orders-"+host, sc.JobName, "the alerts match the jobs by name")
					addr := service(t, p, host).Environment[env]
					require.NotNil(t, addr, "%s sets %s", host, env)
					require.True(t, strings.HasSuffix(*addr, ":"+port), "%s listens on %s, Prometheus scrapes port %s", host, *addr, port)
					scraped = append(scraped, host)
				}
			}
		}
		require.ElementsMatch(t, []string{"api", "workers"}, scraped)
		require.Contains(t, service(t, p, "prometheus").DependsOn, "api")
	})

	t.Run("grafana", func(t *testing.T) {
		mounts := bindMounts(service(t, p, "grafana"))
		provisioning, ok := mounts["/etc/grafana/provisioning"]
		require.True(t, ok, "provisioning is mounted where Grafana reads it")

		var ds struct {
			Datasources []struct {
				UID  string `json:"uid"`
				Type string `json:"type"`
				URL  string `json:"url"`
			} `json:"datasources"`
		}
		readYAMLFile(t, filepath.Join(provisioning, "datasources", "prometheus.yml"), &ds)
		require.Len(t, ds.Datasources, 1)
		require.Equal(t, "prometheus", ds.Datasources[0].Type)
		require.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL, "the prometheus service, at its container port")

		var providers struct {
			Providers []struct {
				Options struct {
					Path string `json:"path"`
				} `json:"options"`
			} `json:"providers"`
		}
		readYAMLFile(t, filepath.Join(provisioning, "dashboards", "orders.yml"), &providers)
		require.Len(t, providers.Providers, 1)
		dashboards, ok := mounts[providers.Providers[0].Options.Path]
		require.True(t, ok, "the provider's path %s is a mount", providers.Providers[0].Options.Path)
		files, err := filepath.Glob(filepath.Join(dashboards, "*.json"))
		require.NoError(t, err)
		require.NotEmpty(t, files)

		// Every panel queries the provisioned datasource.
		for _, f := range files {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			var dash struct {
				Panels []struct {
					Type       string `json:"type"`
					Datasource struct {
						UID string `json:"uid"`
					} `json:"datasource"`
				} `json:"panels"`
			}
			require.NoError(t, json.Unmarshal(data, &dash))
			for _, panel := range dash.Panels {
				if panel.Type != "row" {
					require.Equal(t, ds.Datasources[0].UID, panel.Datasource.UID, "%s: a panel of another datasource", f)
				}
			}
		}
		home := service(t, p, "grafana").Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
		require.NotNil(t, home)
		require.True(t, slices.ContainsFunc(files, func(f string) bool { return filepath.Base(f) == filepath.Base(*home) }))
	})
}
