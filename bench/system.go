package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordersvc/orders/internal/messaging"
)

// system is the API and the workers, built from this checkout and run as
// processes on a fresh database and RabbitMQ namespace.
type system struct {
	dir         string
	dbName      string
	adminURL    string
	dbURL       string
	namespace   string
	api         *process
	uncached    *process // a second API with CACHE_TTL=0, for uncached reads
	workers     *process
	apiURL      string
	uncachedURL string
	statusURL   string
	debugURL    string // the API's profiler
}

type process struct {
	cmd     *exec.Cmd
	logPath string
}

func startSystem(ctx context.Context, adminURL string, extraEnv []string) (*system, error) {
	dir, err := os.MkdirTemp("", "orders-bench-")
	if err != nil {
		return nil, err
	}
	s := &system{dir: dir, adminURL: adminURL, dbName: "bench_" + randomHex(6), namespace: "bench_" + randomHex(6)}
	for _, name := range []string{"server", "workers"} {
		build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, name), "./"+name)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		}
	}
	if err := adminExec(ctx, adminURL, "CREATE DATABASE "+s.dbName); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	u, _ := url.Parse(adminURL)
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
	if s.api, err = s.start(ctx, "server", env, "server"); err != nil {
		return nil, err
	}
	if s.apiURL, err = waitListening(s.api, "http server listening"); err != nil {
		return nil, err
	}
	if s.debugURL, err = waitListening(s.api, "debug server listening"); err != nil {
		return nil, err
	}
	if s.uncached, err = s.start(ctx, "server", append(env, "CACHE_TTL=0", "MIGRATE_ON_START=false"), "server-uncached"); err != nil {
		return nil, err
	}
	if s.uncachedURL, err = waitListening(s.uncached, "http server listening"); err != nil {
		return nil, err
	}
	if s.workers, err = s.start(ctx, "workers", env, "workers"); err != nil {
		return nil, err
	}
	if s.statusURL, err = waitListening(s.workers, "workers http listening"); err != nil {
		return nil, err
	}
	return s, nil
}

// ownSession starts a process in a session of its own. Linux schedules each
// session as a group (autogroup) and shares the CPU between groups, the way
// systemd units or containers each get a cgroup in a deployment: the API,
// the workers and the load generator compete as separate services, as
// PostgreSQL and RabbitMQ already do, instead of as one group sharing one
// share of the machine.
var ownSession = &syscall.SysProcAttr{Setsid: true}

func (s *system) start(ctx context.Context, name string, env []string, logName string) (*process, error) {
	logPath := filepath.Join(s.dir, logName+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.dir, name))
	cmd.SysProcAttr = ownSession
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &process{cmd: cmd, logPath: logPath}, nil
}

// waitListening reads the process log until it names its listen address.
func waitListening(p *process, msg string) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		f, err := os.Open(p.logPath)
		if err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var rec struct{ Msg, Addr string }
				if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == msg {
					_ = f.Close()
					return "http://" + rec.Addr, nil
				}
			}
			_ = f.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", fmt.Errorf("%s never logged %q; see %s", p.cmd.Path, msg, p.logPath)
}

// rssMiB reads the resident set size of a process from /proc.
func (p *process) rssMiB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
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

func (s *system) stop(ctx context.Context) {
	for _, p := range []*process{s.workers, s.uncached, s.api} {
		if p != nil && p.cmd.Process != nil {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		}
	}
	_ = adminExec(ctx, s.adminURL, "DROP DATABASE IF EXISTS "+s.dbName+" WITH (FORCE)")
	_ = messaging.Topology{Namespace: s.namespace, URL: amqpURL()}.Delete()
	_ = os.RemoveAll(s.dir)
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
