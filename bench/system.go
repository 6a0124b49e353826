package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
)

// system is the API and the workers, built from this checkout and run as
// processes on a fresh database and RabbitMQ namespace.
type system struct {
	dir         string
	dbName      string
	adminURL    string
	dbURL       string
	namespace   string
	api         *proc.Proc
	uncached    *proc.Proc // a second API with CACHE_TTL=0, for uncached reads
	limited     *proc.Proc // a third API with the rate limits on and a budget no workload reaches
	workers     *proc.Proc
	apiURL      string
	uncachedURL string
	limitedURL  string
	statusURL   string
}

func startSystem(ctx context.Context, adminURL string, extraEnv []string) (*system, error) {
	dir, err := os.MkdirTemp("", "orders-bench-")
	if err != nil {
		return nil, err
	}
	s := &system{dir: dir, adminURL: adminURL, dbName: "bench_" + randomHex(6), namespace: "bench_" + randomHex(6)}
	if err := s.start(ctx, extraEnv); err != nil {
		s.stop(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

func (s *system) start(ctx context.Context, extraEnv []string) error {
	if err := proc.Build(ctx, s.dir, "./server", "./workers"); err != nil {
		return err
	}
	if err := adminExec(ctx, s.adminURL, "CREATE DATABASE "+s.dbName); err != nil {
		return fmt.Errorf("create database: %w", err)
	}
	u, _ := url.Parse(s.adminURL)
	u.Path = "/" + s.dbName
	s.dbURL = u.String()

	env := append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + s.dbURL,
		"AMQP_NAMESPACE=" + s.namespace,
		"REDIS_KEY_PREFIX=" + s.namespace,
		"JWT_SECRET=bench-" + randomHex(32),
		"HTTP_ADDR=127.0.0.1:0",
		"WORKERS_HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=info", // as in production: one access-log line per request
		"PROCESS_ORDER_DURATION=0s",
		"RATE_LIMIT_ENABLED=false",
		"DEBUG_ADDR=127.0.0.1:0",
	}, extraEnv...)
	var err error
	if s.api, err = s.startProc(ctx, "server", env, "server"); err != nil {
		return err
	}
	s.apiURL = s.api.URL(process.HTTPAddr)
	if s.uncached, err = s.startProc(ctx, "server", append(env, "CACHE_TTL=0", "MIGRATE_ON_START=false"), "server-uncached"); err != nil {
		return err
	}
	s.uncachedURL = s.uncached.URL(process.HTTPAddr)
	// The budgets are taken in Redis on every request, as deployed; only
	// their size differs, so that no request of the bench is refused.
	limits := []string{"RATE_LIMIT_ENABLED=true", "RATE_LIMIT_USER=" + unreachedBudget, "RATE_LIMIT_ANONYMOUS=" + unreachedBudget,
		"RATE_LIMIT_AUTH=" + unreachedBudget, "RATE_LIMIT_LOGIN_EMAIL=" + unreachedBudget, "MIGRATE_ON_START=false"}
	if s.limited, err = s.startProc(ctx, "server", append(env, limits...), "server-limited"); err != nil {
		return err
	}
	s.limitedURL = s.limited.URL(process.HTTPAddr)
	if s.workers, err = s.startProc(ctx, "workers", env, "workers"); err != nil {
		return err
	}
	s.statusURL = s.workers.URL(process.WorkersHTTPAddr)
	return nil
}

// ownSession starts a process in a session of its own. Linux schedules each
// session as a group (autogroup) and shares the CPU between groups, the way
// systemd units or containers each get a cgroup in a deployment: the API,
// the workers and the load generator compete as separate services, as
// PostgreSQL and RabbitMQ already do, instead of as one group sharing one
// share of the machine.
var ownSession = &syscall.SysProcAttr{Setsid: true}

// startProc starts a binary built into s.dir, its log in s.dir, and waits
// until it is ready.
func (s *system) startProc(ctx context.Context, binary string, env []string, name string) (*proc.Proc, error) {
	return proc.Start(ctx, proc.Spec{
		Name: name, Path: filepath.Join(s.dir, binary), Env: env,
		LogFile: filepath.Join(s.dir, name+".log"), SysProcAttr: ownSession,
	})
}

// rssMiB reads the resident set size of a process from /proc.
func rssMiB(p *proc.Proc) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// unreachedBudget is a rate-limit budget no bench workload spends.
const unreachedBudget = "10000000/1s"

// stopExtraAPIs stops the APIs that only the request workloads use, so that
// the pipeline and idle phases run what `task up` runs: one API, one
// workers process.
func (s *system) stopExtraAPIs() {
	stopProcs(&s.uncached, &s.limited)
}

func (s *system) stop(ctx context.Context) {
	stopProcs(&s.workers, &s.uncached, &s.limited, &s.api)
	_ = adminExec(ctx, s.adminURL, "DROP DATABASE IF EXISTS "+s.dbName+" WITH (FORCE)")
	_ = messaging.Topology{Namespace: s.namespace, URL: amqpURL()}.Delete()
	_ = os.RemoveAll(s.dir)
}

func stopProcs(procs ...**proc.Proc) {
	for _, p := range procs {
		if *p == nil {
			continue
		}
		if err := (*p).Stop(time.Minute); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
		}
		*p = nil
	}
}

func adminExec(ctx context.Context, adminURL, stmt string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx) //nolint:errcheck // closing after use
	_, err = conn.Exec(ctx, stmt)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func amqpURL() string { return envOr("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/") }
