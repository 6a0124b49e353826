package config_test

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/joho/godotenv"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
	"github.com/ordersvc/orders/internal/telemetry"
)

// recorder is a getenv that answers from vars and remembers every name asked.
type recorder struct {
	vars map[string]string
	mu   sync.Mutex
	read map[string]bool
}

func (r *recorder) getenv(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read == nil {
		r.read = map[string]bool{}
	}
	r.read[name] = true
	return r.vars[name]
}

func (r *recorder) names() []string { return slices.Sorted(maps.Keys(r.read)) }

// declared lists the variables of Vars that p reads and that readBy reads
// ("" for the loaders).
func declared(p config.Process, readBy string) []string {
	var out []string
	for _, v := range config.Vars {
		if v.Process.Includes(p) && v.ReadBy == readBy {
			out = append(out, v.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Each loader reads exactly the variables Vars declares for its process:
// none undeclared (it would be missing from README and .env.example), none
// of the other process, none forgotten.
func TestLoadersReadExactlyTheirVariables(t *testing.T) {
	t.Parallel()
	api := &recorder{}
	_, err := config.LoadAPI(api.getenv)
	require.NoError(t, err)
	require.Equal(t, declared(config.ProcessAPI, ""), api.names())

	workers := &recorder{}
	_, err = config.LoadWorkers(workers.getenv)
	require.NoError(t, err)
	require.Equal(t, declared(config.ProcessWorkers, ""), workers.names())
}

// The OpenTelemetry variables in Vars are the ones the tracing setup reads.
func TestTracingReadsItsDeclaredVariables(t *testing.T) {
	t.Parallel()
	r := &recorder{vars: map[string]string{
		"OTEL_TRACES_EXPORTER":        "otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1",
	}}
	shutdown, on, err := telemetry.Setup(t.Context(), "config-test", r.getenv)
	require.NoError(t, err)
	require.True(t, on)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), time.Second)
	defer cancel()
	_ = shutdown(ctx) // nothing to flush; the collector does not exist
	require.Equal(t, declared(config.ProcessBoth, "telemetry.Setup"), r.names())
}

// Garbage in every variable only the other process reads changes nothing:
// the API never requires a workers setting, and the other way round.
func TestProcessesIgnoreEachOthersVariables(t *testing.T) {
	t.Parallel()
	garbage := func(only config.Process) map[string]string {
		vars := map[string]string{}
		for _, v := range config.Vars {
			if v.Process == only {
				vars[v.Name] = "not a valid value: \x00"
			}
		}
		require.NotEmpty(t, vars)
		return vars
	}

	apiDefaults, err := config.LoadAPI(env(nil))
	require.NoError(t, err)
	api, err := config.LoadAPI(env(garbage(config.ProcessWorkers)))
	require.NoError(t, err, "the API refuses a workers variable")
	require.Equal(t, apiDefaults, api)

	workersDefaults, err := config.LoadWorkers(env(nil))
	require.NoError(t, err)
	workers, err := config.LoadWorkers(env(garbage(config.ProcessAPI)))
	require.NoError(t, err, "the workers refuse an API variable")
	require.Equal(t, workersDefaults, workers)
}

func TestVarsAreWellFormed(t *testing.T) {
	t.Parallel()
	name := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	seen := map[string]bool{}
	for _, v := range config.Vars {
		require.Regexp(t, name, v.Name)
		require.False(t, seen[v.Name], "%s is declared twice", v.Name)
		seen[v.Name] = true
		require.Contains(t, []config.Process{config.ProcessAPI, config.ProcessWorkers, config.ProcessBoth}, v.Process, v.Name)
		require.NotEmpty(t, v.Doc, "%s has no meaning", v.Name)
		if v.Secret {
			require.Empty(t, v.Default, "%s: a secret has no default", v.Name)
			require.Empty(t, v.Example, "%s: .env.example never holds a secret", v.Name)
		}
	}
}

// repoFile reads a file at the repository root.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", name))
	require.NoError(t, err)
	return string(data)
}

// README.md and .env.example are what Vars generates; task generate
// rewrites them.
func TestDocsAreCurrent(t *testing.T) {
	t.Parallel()
	readme := repoFile(t, "README.md")
	want, err := config.ReplaceReadme(readme)
	require.NoError(t, err)
	require.Equal(t, want, readme, "README.md's configuration tables are out of date: run task generate")
	require.Equal(t, config.DotEnvExample(), repoFile(t, ".env.example"), ".env.example is out of date: run task generate")

	section := readme[strings.Index(readme, config.ReadmeBegin):strings.Index(readme, config.ReadmeEnd)]
	example := repoFile(t, ".env.example")
	for _, v := range config.Vars {
		require.Contains(t, section, "| `"+v.Name+"` |", "README.md does not document %s", v.Name)
		require.Regexp(t, `(?m)^#?`+v.Name+`=`, example, ".env.example does not list %s", v.Name)
	}
}

// What `task env` makes of .env.example starts both processes; left as it
// is, .env.example's empty JWT_SECRET is refused by the API.
func TestDotEnvExampleLoads(t *testing.T) {
	t.Parallel()
	vars, err := godotenv.Unmarshal(config.DotEnvExample())
	require.NoError(t, err)
	for _, v := range config.Vars {
		if v.Unset {
			require.NotContains(t, vars, v.Name, "%s is set in .env.example", v.Name)
		}
	}

	api, err := config.LoadAPI(env(vars))
	require.NoError(t, err)
	require.ErrorContains(t, api.CheckJWTSecret(), "JWT_SECRET is required")
	_, err = config.LoadWorkers(env(vars))
	require.NoError(t, err)

	vars["JWT_SECRET"] = strings.Repeat("k", config.MinJWTSecretLen)
	api, err = config.LoadAPI(env(vars))
	require.NoError(t, err)
	require.NoError(t, api.CheckJWTSecret())
	require.Equal(t, "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable", api.Database.URL, "the example's database")
	require.Equal(t, []string{"http://localhost:3000"}, api.Edge.CORSAllowedOrigins)
}

func TestReplaceReadmeNeedsTheMarkers(t *testing.T) {
	t.Parallel()
	_, err := config.ReplaceReadme("# Title\n\nno tables here\n")
	require.ErrorContains(t, err, config.ReadmeBegin)
	_, err = config.ReplaceReadme(config.ReadmeBegin + "\nold\n")
	require.ErrorContains(t, err, config.ReadmeEnd)

	got, err := config.ReplaceReadme("before\n" + config.ReadmeBegin + "\nold table\n" + config.ReadmeEnd + "\nafter\n")
	require.NoError(t, err)
	require.Equal(t, "before\n"+config.ReadmeBegin+"\n\n"+config.Markdown()+"\n"+config.ReadmeEnd+"\nafter\n", got)
	require.NotContains(t, got, "old table")
}
