// Package e2e runs the real binaries (go build of ./server and ./workers) as
// processes against the local PostgreSQL and RabbitMQ, and drives them
// through the generated client, the way an operator and a user would.
package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orders-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := proc.Build(context.Background(), dir, "../server", "../workers"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// startProc runs binary with env, waits until it is ready (READY=1, see
// internal/testkit/proc) and stops it when t ends, showing its log if t
// failed.
func startProc(t testing.TB, binary string, env map[string]string) *proc.Proc {
	t.Helper()
	vars := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	p, err := proc.Start(context.Background(), proc.Spec{Name: binary, Path: filepath.Join(binDir, binary), Env: vars})
	require.NoError(t, err)
	t.Cleanup(func() {
		if err := p.Stop(60 * time.Second); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Log(p.Tail(100))
		}
	})
	return p
}

// system is one API and one workers process on their own database and namespace.
type system struct {
	t       *testing.T
	dbURL   string
	topo    messaging.Topology
	api     *proc.Proc
	workers *proc.Proc
	client  *client.ClientWithResponses
	env     map[string]string
}

func newSystem(t *testing.T, dbURL string, topo messaging.Topology, extra map[string]string) *system {
	t.Helper()
	env := map[string]string{
		"DATABASE_URL":           dbURL,
		"DATABASE_MAX_CONNS":     "8", // tests run side by side on one PostgreSQL (100 connections)
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
	testdb.ProcessEnv(env)
	s := &system{t: t, dbURL: dbURL, topo: topo, env: env}
	s.api = startProc(t, "server", env)
	s.startWorkers()
	c, err := client.NewClientWithResponses(s.api.URL(process.HTTPAddr))
	require.NoError(t, err)
	s.client = c
	return s
}

func (s *system) startWorkers() {
	s.workers = startProc(s.t, "workers", s.env)
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
