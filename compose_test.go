package orders

// There is no Docker engine on the development and CI machines, so these
// tests check what can be checked without one: compose.yaml loads and
// validates the way `docker compose` loads it (compose-go is its loader), the
// configuration it hands the containers is one config.Load accepts, and the
// Dockerfile and .dockerignore build what compose runs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
)

const composeJWTSecret = "compose-test-secret-0123456789abcdefghij"

// appServices run the image built from the Dockerfile.
var appServices = []string{"migrate", "api", "workers"}

// loadCompose loads dir/compose.yaml as `docker compose` run in dir would:
// the project environment is env (the shell) over dir/.env when it exists.
func loadCompose(t *testing.T, dir string, env map[string]string) (*types.Project, error) {
	t.Helper()
	var shell []string
	for k, v := range env {
		shell = append(shell, k+"="+v)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml")},
		cli.WithWorkingDirectory(dir),
		cli.WithEnv(shell),
		cli.WithEnvFiles(), // dir/.env when present
		cli.WithDotEnv,
	)
	require.NoError(t, err)
	return opts.LoadProject(t.Context())
}

// composeInTempDir copies compose.yaml into a fresh directory with the given
// .env ("" for none), so that a developer's own .env never leaks in.
func composeInTempDir(t *testing.T, dotenv string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile("compose.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "compose.yaml"), data, 0o600))
	if dotenv != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(dotenv), 0o600))
	}
	return dir
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	require.True(t, ok, "compose.yaml has no service %q", name)
	return s
}

// environment is a service's resolved environment (env_file included).
func environment(t *testing.T, p *types.Project, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range service(t, p, name).Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, ".", map[string]string{"JWT_SECRET": composeJWTSecret})
	require.NoError(t, err)

	t.Run("services", func(t *testing.T) {
		want := []string{"postgres", "redis", "rabbitmq", "migrate", "api", "workers"}
		require.ElementsMatch(t, want, p.ServiceNames())
	})

	t.Run("healthchecks", func(t *testing.T) {
		for name, probe := range map[string]string{
			"postgres": "pg_isready",
			"redis":    "redis-cli ping",
			"rabbitmq": "rabbitmq-diagnostics -q ping",
			"api":      "http://127.0.0.1:8080/health",
			"workers":  "http://127.0.0.1:8081/health",
		} {
			hc := service(t, p, name).HealthCheck
			require.NotNil(t, hc, "%s has no healthcheck", name)
			require.False(t, hc.Disable, name)
			require.NotEmpty(t, hc.Test, name)
			require.Contains(t, strings.Join(hc.Test, " "), probe, name)
		}
		require.Nil(t, service(t, p, "migrate").HealthCheck, "migrate is a one-shot job")
	})

	t.Run("depends_on", func(t *testing.T) {
		want := map[string]map[string]string{
			"migrate": {"postgres": types.ServiceConditionHealthy},
			"api": {
				"migrate":  types.ServiceConditionCompletedSuccessfully,
				"postgres": types.ServiceConditionHealthy,
				"redis":    types.ServiceConditionHealthy,
				"rabbitmq": types.ServiceConditionHealthy,
			},
			"workers": {
				"migrate":  types.ServiceConditionCompletedSuccessfully,
				"postgres": types.ServiceConditionHealthy,
				"rabbitmq": types.ServiceConditionHealthy,
			},
		}
		for name, deps := range want {
			got := map[string]string{}
			for dep, cfg := range service(t, p, name).DependsOn {
				got[dep] = cfg.Condition
			}
			require.Equal(t, deps, got, "depends_on of %s", name)
		}
	})

	t.Run("commands", func(t *testing.T) {
		require.Equal(t, types.ShellCommand{"/app/server", "migrate"}, service(t, p, "migrate").Command)
		require.Equal(t, types.ShellCommand{"/app/server"}, service(t, p, "api").Command)
		require.Equal(t, types.ShellCommand{"/app/workers"}, service(t, p, "workers").Command)
		require.Equal(t, "no", service(t, p, "migrate").Restart, "a finished migration must not restart")
	})

	t.Run("ports", func(t *testing.T) {
		published := func(name string) []uint32 {
			var out []uint32
			for _, port := range service(t, p, name).Ports {
				out = append(out, port.Target)
			}
			return out
		}
		require.Contains(t, published("api"), uint32(8080))
		require.Contains(t, published("rabbitmq"), uint32(15672), "the management UI")
		require.Contains(t, service(t, p, "rabbitmq").Image, "-management", "the UI needs a management image")
	})

	t.Run("build", func(t *testing.T) {
		root, err := filepath.Abs(".")
		require.NoError(t, err)
		image := service(t, p, "api").Image
		require.NotEmpty(t, image)
		for _, name := range appServices {
			s := service(t, p, name)
			require.NotNil(t, s.Build, "%s has no build", name)
			require.Equal(t, image, s.Image, "%s runs the same image as api", name)
			require.Equal(t, root, s.Build.Context, "%s builds from the repository root", name)
			dockerfile := s.Build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(s.Build.Context, dockerfile)
			}
			require.Equal(t, filepath.Join(root, "Dockerfile"), dockerfile, name)
		}
		// Every build anywhere in the file points at something that exists.
		for name, s := range p.Services {
			if s.Build == nil {
				continue
			}
			require.DirExists(t, s.Build.Context, name)
			dockerfile := s.Build.Dockerfile
			if !filepath.IsAbs(dockerfile) {
				dockerfile = filepath.Join(s.Build.Context, dockerfile)
			}
			require.FileExists(t, dockerfile, name)
		}
	})

	t.Run("volumes", func(t *testing.T) {
		mounts := map[string]string{}
		for name, s := range p.Services {
			for _, v := range s.Volumes {
				if v.Type == types.VolumeTypeVolume {
					require.Contains(t, p.Volumes, v.Source, "%s mounts an undeclared volume", name)
					mounts[name] = v.Source
				}
			}
		}
		require.Contains(t, mounts, "postgres", "the database lives in a named volume")
		require.Contains(t, mounts, "rabbitmq", "durable queues live in a named volume")
	})
}

func TestComposeEnvironment(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(".env.example")
	require.NoError(t, err)
	// What `task env` writes: .env.example with a JWT_SECRET.
	taskEnv := regexp.MustCompile(`(?m)^JWT_SECRET=.*$`).ReplaceAllString(string(example), "JWT_SECRET="+composeJWTSecret)
	require.Contains(t, taskEnv, "JWT_SECRET="+composeJWTSecret, ".env.example must list JWT_SECRET")

	t.Run("dotenv made from .env.example", func(t *testing.T) {
		p, err := loadCompose(t, composeInTempDir(t, taskEnv), nil)
		require.NoError(t, err)
		assertPointsAtServices(t, p)
		require.Equal(t, composeJWTSecret, environment(t, p, "api")["JWT_SECRET"])
		// env_file passes every documented setting through to the processes.
		for _, name := range dotenvNames(t, string(example)) {
			for _, svc := range appServices {
				require.Contains(t, environment(t, p, svc), name, "%s does not get %s from .env", svc, name)
			}
		}
	})

	t.Run("no dotenv, secret from the shell", func(t *testing.T) {
		p, err := loadCompose(t, composeInTempDir(t, ""), map[string]string{"JWT_SECRET": composeJWTSecret})
		require.NoError(t, err)
		assertPointsAtServices(t, p)
	})

	t.Run("credentials are interpolated", func(t *testing.T) {
		dotenv := strings.Join([]string{
			"JWT_SECRET=" + composeJWTSecret,
			"POSTGRES_USER=alice", "POSTGRES_PASSWORD=pg-pass", "POSTGRES_DB=shop",
			"RABBITMQ_USER=bob", "RABBITMQ_PASSWORD=mq-pass",
			"API_PORT=9090", "ORDERS_IMAGE=registry.example.com/orders:1.2.3",
		}, "\n")
		// The shell wins over .env, as in docker compose.
		p, err := loadCompose(t, composeInTempDir(t, dotenv), map[string]string{"POSTGRES_PASSWORD": "from-shell"})
		require.NoError(t, err)
		api := environment(t, p, "api")
		require.Equal(t, "postgres://alice:from-shell@postgres:5432/shop?sslmode=disable", api["DATABASE_URL"])
		require.Equal(t, "amqp://bob:mq-pass@rabbitmq:5672/", api["AMQP_URL"])
		pg := environment(t, p, "postgres")
		require.Equal(t, map[string]string{"POSTGRES_USER": "alice", "POSTGRES_PASSWORD": "from-shell", "POSTGRES_DB": "shop"}, pg)
		mq := environment(t, p, "rabbitmq")
		require.Equal(t, "bob", mq["RABBITMQ_DEFAULT_USER"])
		require.Equal(t, "mq-pass", mq["RABBITMQ_DEFAULT_PASS"])
		require.Equal(t, "9090", service(t, p, "api").Ports[0].Published)
		for _, name := range appServices {
			require.Equal(t, "registry.example.com/orders:1.2.3", service(t, p, name).Image)
		}
	})

	for name, c := range map[string]struct{ dotenv string }{
		"JWT_SECRET empty in .env": {dotenv: string(example)},
		"no .env at all":           {dotenv: ""},
	} {
		t.Run(name+" fails", func(t *testing.T) {
			_, err := loadCompose(t, composeInTempDir(t, c.dotenv), nil)
			require.Error(t, err)
			require.Contains(t, err.Error(), "set JWT_SECRET in .env")
		})
	}
}

// assertPointsAtServices checks that the processes reach the compose
// services, not 127.0.0.1, skip the migrations the migrate job ran, and get
// a configuration that config.Load accepts.
func assertPointsAtServices(t *testing.T, p *types.Project) {
	t.Helper()
	wantHost := map[string]string{"DATABASE_URL": "postgres", "REDIS_URL": "redis", "AMQP_URL": "rabbitmq"}
	for _, svc := range appServices {
		env := environment(t, p, svc)
		for name, host := range wantHost {
			if svc == "migrate" && name != "DATABASE_URL" {
				continue
			}
			u, err := url.Parse(env[name])
			require.NoError(t, err, "%s %s", svc, name)
			require.Equal(t, host, u.Hostname(), "%s %s=%s", svc, name, u.Redacted())
			require.Contains(t, p.Services, host)
		}
		getenv := func(k string) string { return env[k] }
		var migrateOnStart bool
		if svc == "workers" {
			cfg, err := config.LoadWorkers(getenv)
			require.NoError(t, err, "config.LoadWorkers refuses the environment of %s", svc)
			migrateOnStart = cfg.Database.MigrateOnStart
		} else { // migrate runs `server migrate`
			cfg, err := config.LoadAPI(getenv)
			require.NoError(t, err, "config.LoadAPI refuses the environment of %s", svc)
			migrateOnStart = cfg.Database.MigrateOnStart
		}
		if svc != "migrate" {
			require.False(t, migrateOnStart, "%s must leave the migrations to the migrate job", svc)
		}
	}
	api, err := config.LoadAPI(func(k string) string { return environment(t, p, "api")[k] })
	require.NoError(t, err)
	require.NoError(t, api.CheckJWTSecret())
	require.Equal(t, ":8080", api.HTTPAddr, "the api healthcheck and port mapping use 8080")
	workers, err := config.LoadWorkers(func(k string) string { return environment(t, p, "workers")[k] })
	require.NoError(t, err)
	require.Equal(t, ":8081", workers.HTTPAddr, "the workers healthcheck uses 8081")
}

// TestComposeCoversConfig: every variable a process reads (config.Vars)
// either works with its default inside a container or is set by
// compose.yaml. A default that points at the loopback interface (a local
// service) is wrong in a container, so such a variable must be set by
// compose for each process that reads it.
func TestComposeCoversConfig(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, composeInTempDir(t, ""), map[string]string{"JWT_SECRET": composeJWTSecret})
	require.NoError(t, err)
	loopback := regexp.MustCompile(`(?i)\b(127\.0\.0\.1|localhost|\[::1\])\b`)
	for svc, process := range map[string]config.Process{"api": config.ProcessAPI, "workers": config.ProcessWorkers} {
		env := environment(t, p, svc)
		var local []string
		for _, v := range config.Vars {
			if !v.Process.Includes(process) || !loopback.MatchString(v.Default) {
				continue // not read by svc, or the default serves a container as well
			}
			local = append(local, v.Name)
			require.Contains(t, env, v.Name, "%s: %s defaults to %q, a local address; compose.yaml must set it", svc, v.Name, v.Default)
			require.NotRegexp(t, loopback, env[v.Name], "%s: %s", svc, v.Name)
		}
		// Guard the check itself: the database is local by default.
		require.Contains(t, local, "DATABASE_URL", "%s: no local default found in config.Vars", svc)
		t.Logf("%s: variables with a local default, set by compose: %v", svc, local)
	}
}

// dotenvNames lists the variables assigned in a .env file.
func dotenvNames(t *testing.T, dotenv string) []string {
	t.Helper()
	names := regexp.MustCompile(`(?m)^\s*([A-Z][A-Z0-9_]*)=`).FindAllStringSubmatch(dotenv, -1)
	require.NotEmpty(t, names)
	out := make([]string, 0, len(names))
	for _, m := range names {
		out = append(out, m[1])
	}
	return out
}

// dockerStage is one FROM ... block of a Dockerfile.
type dockerStage struct {
	from  string // image reference
	name  string // AS name
	lines []string
}

// parseDockerfile splits a Dockerfile into stages, joining continued lines
// and dropping comments; enough for the checks below.
func parseDockerfile(t *testing.T, text string) []dockerStage {
	t.Helper()
	var stages []dockerStage
	var logical strings.Builder
	for raw := range strings.SplitSeq(text, "\n") {
		line := strings.TrimSpace(raw)
		if strings.HasPrefix(line, "#") || (line == "" && logical.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			logical.WriteString(cont + " ")
			continue
		}
		logical.WriteString(line)
		inst := strings.TrimSpace(logical.String())
		logical.Reset()
		if inst == "" {
			continue
		}
		fields := strings.Fields(inst)
		if strings.EqualFold(fields[0], "FROM") {
			st := dockerStage{}
			args := slices.DeleteFunc(fields[1:], func(f string) bool { return strings.HasPrefix(f, "--") })
			require.NotEmpty(t, args, "FROM without an image: %q", inst)
			st.from = args[0]
			if len(args) == 3 && strings.EqualFold(args[1], "AS") {
				st.name = args[2]
			}
			stages = append(stages, st)
			continue
		}
		require.NotEmpty(t, stages, "instruction before FROM: %q", inst)
		stages[len(stages)-1].lines = append(stages[len(stages)-1].lines, inst)
	}
	return stages
}

func instructions(st dockerStage, keyword string) []string {
	var out []string
	for _, l := range st.lines {
		if f := strings.Fields(l); strings.EqualFold(f[0], keyword) {
			out = append(out, strings.TrimSpace(l[len(f[0]):]))
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	text, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	stages := parseDockerfile(t, string(text))
	require.GreaterOrEqual(t, len(stages), 2, "a multi-stage build")
	build, final := stages[0], stages[len(stages)-1]

	t.Run("build stage uses the Go of go.mod", func(t *testing.T) {
		gomod, err := os.ReadFile("go.mod")
		require.NoError(t, err)
		m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
		require.NotNil(t, m, "go.mod has no go line")
		require.Regexp(t, `^golang:`+regexp.QuoteMeta(string(m[1]))+`\.\d+-`, build.from, "pinned golang image of go.mod's minor version")
		runs := strings.Join(instructions(build, "RUN"), "\n")
		env := strings.Join(instructions(build, "ENV"), "\n")
		require.True(t, strings.Contains(env, "CGO_ENABLED=0") || strings.Contains(runs, "CGO_ENABLED=0"), "static binaries")
		for _, want := range []string{"-trimpath", `-ldflags "-s -w"`, "./server", "./workers"} {
			require.Contains(t, runs, want)
		}
	})

	t.Run("final stage", func(t *testing.T) {
		require.NotEqual(t, build.name, final.from, "the final image must not be the toolchain image")
		require.Regexp(t, `:\d+(\.\d+)+`, final.from, "pinned base image")
		copies := strings.Join(instructions(final, "COPY"), "\n")
		require.Contains(t, copies, "--from="+build.name)
		require.Contains(t, copies, "/app/")
		// compose runs /app/server and /app/workers.
		require.Contains(t, copies, "/out/server")
		require.Contains(t, copies, "/out/workers")

		users := instructions(final, "USER")
		require.NotEmpty(t, users, "the final stage must set USER")
		user, _, _ := strings.Cut(users[len(users)-1], ":")
		require.NotContains(t, []string{"root", "0", ""}, user, "the final stage runs as root")
	})

	t.Run("healthcheck probe exists in the image", func(t *testing.T) {
		p, err := loadCompose(t, ".", map[string]string{"JWT_SECRET": composeJWTSecret})
		require.NoError(t, err)
		for _, name := range []string{"api", "workers"} {
			hc := service(t, p, name).HealthCheck
			require.NotNil(t, hc)
			if slices.Contains(hc.Test, "wget") {
				require.True(t, strings.HasPrefix(final.from, "alpine:") || strings.HasPrefix(final.from, "busybox:"),
					"%s probes with wget, which %s lacks", name, final.from)
			}
		}
	})
}

// TestDockerignoreKeepsBuildInputs: every file `go build ./server ./workers`
// reads from this module (Go files and embedded files) is in the build
// context, and secrets are not.
func TestDockerignoreKeepsBuildInputs(t *testing.T) {
	t.Parallel()
	ignore, err := os.ReadFile(".dockerignore")
	require.NoError(t, err)
	patterns, err := ignorefile.ReadAll(bytes.NewReader(ignore))
	require.NoError(t, err)
	pm, err := patternmatcher.New(patterns)
	require.NoError(t, err)

	root, err := filepath.Abs(".")
	require.NoError(t, err)
	inputs := []string{"go.mod", "go.sum"}
	cmd := exec.CommandContext(t.Context(), "go", "list", "-deps", "-json=Dir,GoFiles,CgoFiles,EmbedFiles,Module", "./server", "./workers")
	out, err := cmd.Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("go list: %v\n%s", err, exit.Stderr)
	}
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg struct {
			Dir                           string
			GoFiles, CgoFiles, EmbedFiles []string
			Module                        *struct{ Main bool }
		}
		err := dec.Decode(&pkg)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if pkg.Module == nil || !pkg.Module.Main {
			continue
		}
		for _, name := range slices.Concat(pkg.GoFiles, pkg.CgoFiles, pkg.EmbedFiles) {
			rel, err := filepath.Rel(root, filepath.Join(pkg.Dir, name))
			require.NoError(t, err)
			inputs = append(inputs, filepath.ToSlash(rel))
		}
	}
	require.Greater(t, len(inputs), 20, "go list found too few files to be right")
	for _, path := range inputs {
		excluded, err := pm.MatchesOrParentMatches(path)
		require.NoError(t, err)
		require.False(t, excluded, ".dockerignore excludes %s, which the build needs", path)
	}
	for _, secret := range []string{".env", ".git/config"} {
		excluded, err := pm.MatchesOrParentMatches(secret)
		require.NoError(t, err)
		require.True(t, excluded, ".dockerignore must exclude %s", secret)
	}
}
