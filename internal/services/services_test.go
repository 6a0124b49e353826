package services_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/services"
	"github.com/ordersvc/orders/internal/testkit/ports"
	"github.com/ordersvc/orders/internal/testkit/testlock"
)

// secret is in every URL the tests build; no message may show it.
const secret = "s3cret-pw"

// closedPort returns a loopback port nothing listens on, from the tests'
// range below the kernel's ephemeral ports, where no outgoing connection
// can take it before the test dials it.
func closedPort(t *testing.T) string {
	t.Helper()
	return strconv.Itoa(ports.Free(t))
}

// closedURLs points each of the three URLs at its own closed port.
func closedURLs(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"DATABASE_URL": "postgres://postgres:" + secret + "@127.0.0.1:" + closedPort(t) + "/orders?sslmode=disable",
		"REDIS_URL":    "redis://:" + secret + "@127.0.0.1:" + closedPort(t) + "/0",
		"AMQP_URL":     "amqp://guest:" + secret + "@127.0.0.1:" + closedPort(t) + "/",
	}
}

func getenvOf(env map[string]string) func(string) string {
	return func(key string) string { return env[key] }
}

func hostPort(t *testing.T, key string, env map[string]string) string {
	t.Helper()
	svcs, err := services.FromEnv(getenvOf(env))
	require.NoError(t, err)
	for _, s := range svcs {
		if s.Variable == key {
			return s.Address()
		}
	}
	t.Fatalf("no service reads %s", key)
	return ""
}

// TestExplainNamesTheServiceOfAFailedDial fails a real client's connection
// the way each process does at start, and checks that the error an operator
// reads names the service, the variable, the address and the fix.
func TestExplainNamesTheServiceOfAFailedDial(t *testing.T) {
	t.Parallel()
	env := closedURLs(t)
	ctx := context.Background()
	for _, tc := range []struct {
		service, variable string
		dial              func() error
	}{
		{"PostgreSQL", "DATABASE_URL", func() error {
			conn, err := pgx.Connect(ctx, env["DATABASE_URL"])
			if err == nil {
				_ = conn.Close(ctx)
			}
			return fmt.Errorf("migrate: connect: %w", err)
		}},
		{"Redis", "REDIS_URL", func() error {
			opt, err := rueidis.ParseURL(env["REDIS_URL"])
			if err != nil {
				return err
			}
			client, err := rueidis.NewClient(opt)
			if client != nil {
				client.Close()
			}
			return fmt.Errorf("redis client: %w", err)
		}},
		{"RabbitMQ", "AMQP_URL", func() error {
			cfg := amqp.NewDurablePubSubConfig(env["AMQP_URL"], nil)
			conn, err := amqp.NewConnection(cfg.Connection, watermill.NopLogger{})
			if conn != nil {
				_ = conn.Close()
			}
			return fmt.Errorf("task publisher connection: %w", err)
		}},
	} {
		t.Run(tc.service, func(t *testing.T) {
			t.Parallel()
			dialErr := tc.dial()
			require.Error(t, dialErr)
			err := services.Explain(dialErr, getenvOf(env))
			var unreachable *services.Unreachable
			require.ErrorAs(t, err, &unreachable)
			require.Equal(t, tc.service, unreachable.Service.Name)
			want := tc.service + " is not reachable at " + hostPort(t, tc.variable, env) + " (" + tc.variable +
				"): connect: connection refused; run `task services`, or start it yourself"
			require.Equal(t, want, err.Error())
		})
	}
}

func TestExplainLeavesOtherErrorsAlone(t *testing.T) {
	t.Parallel()
	env := closedURLs(t)
	other := errors.New("configuration: JWT_SECRET is required")
	require.Same(t, other, services.Explain(other, getenvOf(env)))

	// A dial to an address that is none of the three (an OTLP collector, say).
	_, err := new(net.Dialer).DialContext(context.Background(), "tcp", "127.0.0.1:"+closedPort(t))
	require.Error(t, err)
	wrapped := fmt.Errorf("tracing: %w", err)
	require.Same(t, wrapped, services.Explain(wrapped, getenvOf(env)))
}

func TestCheckReportsEachMissingService(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// The defaults are this machine's running services; the outage tests
	// stop them only while no test holds them shared.
	for _, service := range []string{"postgres", "redis", "rabbitmq"} {
		testlock.Shared(t, service)
	}
	svcs, err := services.FromEnv(getenvOf(nil))
	require.NoError(t, err)
	require.Empty(t, services.Check(ctx, svcs, 3*time.Second))

	env := closedURLs(t)
	svcs, err = services.FromEnv(getenvOf(env))
	require.NoError(t, err)
	errs := services.Check(ctx, svcs, 3*time.Second)
	require.Len(t, errs, 3)
	for i, name := range []string{"PostgreSQL", "Redis", "RabbitMQ"} {
		require.ErrorContains(t, errs[i], name+" is not reachable at 127.0.0.1:")
		require.NotContains(t, errs[i].Error(), secret)
	}

	// One missing among running ones is the only one named.
	env = map[string]string{"REDIS_URL": "redis://127.0.0.1:" + closedPort(t) + "/0"}
	svcs, err = services.FromEnv(getenvOf(env))
	require.NoError(t, err)
	errs = services.Check(ctx, svcs, 3*time.Second)
	require.Len(t, errs, 1)
	require.ErrorContains(t, errs[0], "Redis is not reachable at 127.0.0.1:")
}

// TestOperatorSeesTheMissingService runs what an operator runs, task up's
// preflight and the binaries, against closed ports and reads what they print.
func TestOperatorSeesTheMissingService(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	for _, pkg := range []string{"../../server", "../../workers", "./cmd/checkservices"} {
		out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput() //nolint:noctx // build step
		require.NoError(t, err, "%s", out)
	}
	env := closedURLs(t)
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    []string
		exclude []string
	}{
		{"preflight, all three missing", []string{"checkservices"}, env, []string{
			"PostgreSQL is not reachable at " + hostPort(t, "DATABASE_URL", env) + " (DATABASE_URL)",
			"Redis is not reachable at " + hostPort(t, "REDIS_URL", env) + " (REDIS_URL)",
			"RabbitMQ is not reachable at " + hostPort(t, "AMQP_URL", env) + " (AMQP_URL)",
		}, nil},
		{"preflight, RabbitMQ missing", []string{"checkservices"}, map[string]string{"AMQP_URL": env["AMQP_URL"]}, []string{
			"RabbitMQ is not reachable at " + hostPort(t, "AMQP_URL", env) + " (AMQP_URL)",
		}, []string{"PostgreSQL", "Redis"}},
		{"server migrate", []string{"server", "migrate"}, env, []string{
			"server: PostgreSQL is not reachable at " + hostPort(t, "DATABASE_URL", env) + " (DATABASE_URL)",
		}, nil},
		{"workers", []string{"workers"}, map[string]string{
			"AMQP_URL": env["AMQP_URL"], "MIGRATE_ON_START": "false", "WORKERS_HTTP_ADDR": "127.0.0.1:0",
		}, []string{
			"workers: RabbitMQ is not reachable at " + hostPort(t, "AMQP_URL", env) + " (AMQP_URL)",
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, tc.args[0]), tc.args[1:]...)
			cmd.Dir = t.TempDir() // no .env
			cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
			require.Equal(t, 1, exit.ExitCode(), "stderr: %s", stderr.String())
			lines := bytes.Count(stderr.Bytes(), []byte("\n"))
			require.Equal(t, len(tc.want), lines, "one line per missing service:\n%s", stderr.String())
			for _, want := range tc.want {
				require.Contains(t, stderr.String(), want+": connect: connection refused; run `task services`, or start it yourself")
			}
			for _, not := range append(tc.exclude, secret) {
				require.NotContains(t, stderr.String(), not)
			}
		})
	}
}
