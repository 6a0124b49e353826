// Package e2e runs the real binaries (go build of ./server and ./workers) as
// processes against the local PostgreSQL and RabbitMQ, and drives them
// through the generated client, the way an operator and a user would.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testlog"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orders-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, name := range []string{"server", "workers"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../"+name) //nolint:noctx // build step before any test
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: build", name, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running binary.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	logs *testlog.Sink
	done chan error
}

// startProc runs binary with env and waits for its ready log line.
func startProc(t testing.TB, binary string, env map[string]string, readyMsg string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, binary)) //nolint:noctx // stopped by signals, not a context
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{t: t, cmd: cmd, logs: testlog.NewSink(), done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	require.NoError(t, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		p.signal(syscall.SIGTERM)
		if t.Failed() {
			p.showLog(binary)
		}
	})
	_, ok := p.logs.WaitFor(readyMsg, 60*time.Second)
	require.True(t, ok, "%s did not log %q:\n%s", binary, readyMsg, p.logs.String())
	return p
}

// showLog puts the process's log in the test output; a long one (a load
// test's) goes to a file instead, with only its end shown.
func (p *proc) showLog(binary string) {
	const tail = 100
	log := p.logs.String()
	lines := strings.SplitAfter(log, "\n")
	if len(lines) <= 2*tail {
		p.t.Logf("%s log:\n%s", binary, log)
		return
	}
	f, err := os.CreateTemp("", "orders-e2e-"+binary+"-*.log")
	if err == nil {
		_, err = f.WriteString(log)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		p.t.Logf("%s log: %d lines, not saved: %v", binary, len(lines), err)
		return
	}
	p.t.Logf("%s log: %d lines in %s, the last %d:\n%s", binary, len(lines), f.Name(), tail, strings.Join(lines[len(lines)-tail:], ""))
}

// signal sends sig and waits for the process to exit (no-op when it has).
func (p *proc) signal(sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case err := <-p.done:
		_ = err // the exit status of a signalled process says nothing new
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done //nolint:errcheck // killed: the status is known
		p.t.Errorf("process did not exit within 60s of %s", sig)
	}
}

// addr returns the address logged with msg.
func (p *proc) addr(msg string) string {
	rec, ok := p.logs.WaitFor(msg, 10*time.Second)
	require.True(p.t, ok)
	addr, _ := rec["addr"].(string)
	return addr
}

// system is one API and one workers process on their own database and namespace.
type system struct {
	t       *testing.T
	dbURL   string
	topo    messaging.Topology
	api     *proc
	workers *proc
	client  *client.ClientWithResponses
	env     map[string]string
}

func newSystem(t *testing.T, dbURL string, topo messaging.Topology, extra map[string]string) *system {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":           dbURL,
		"AMQP_URL":               topo.URL,
		"AMQP_NAMESPACE":         topo.Namespace,
		"REDIS_KEY_PREFIX":       topo.Namespace, // own cache and rate-limit budgets
		"JWT_SECRET":             "e2e-secret-0123456789abcdef-0123456789",
		"HTTP_ADDR":              "127.0.0.1:0",
		"WORKERS_HTTP_ADDR":      "127.0.0.1:0",
		"PROCESS_ORDER_DURATION": "20ms",
		"LOG_LEVEL":              "info",
	}
	for k, v := range extra {
		env[k] = v
	}
	s := &system{t: t, dbURL: dbURL, topo: topo, env: env}
	s.api = startProc(t, "server", env, "http server listening")
	s.startWorkers()
	c, err := client.NewClientWithResponses("http://" + s.api.addr("http server listening"))
	require.NoError(t, err)
	s.client = c
	return s
}

func (s *system) startWorkers() {
	s.workers = startProc(s.t, "workers", s.env, "workers running")
}

// login registers a user and returns a request editor carrying its token.
func (s *system) login() client.RequestEditorFn {
	s.t.Helper()
	_, auth := s.newUser()
	return auth
}

// newUser registers a user and returns its id and a request editor carrying its token.
func (s *system) newUser() (int64, client.RequestEditorFn) {
	s.t.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("e2e-%d@example.com", time.Now().UnixNano())
	reg, err := s.client.RegisterWithResponse(ctx, client.RegisterJSONRequestBody{Email: openapi_types.Email(email), Password: "correct-horse"})
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusCreated, reg.StatusCode(), string(reg.Body))
	tok, err := s.client.CreateTokenWithFormdataBodyWithResponse(ctx, client.CreateTokenFormdataRequestBody{Username: email, Password: "correct-horse"})
	require.NoError(s.t, err)
	require.Equal(s.t, http.StatusOK, tok.StatusCode(), string(tok.Body))
	token := tok.JSON200.AccessToken
	return reg.JSON201.Id, func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
}
