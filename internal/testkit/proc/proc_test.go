package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/sdnotify"
	"github.com/ordersvc/orders/internal/testkit/proc"
)

// readyAfter is a command that logs a line, reports READY=1 with an address
// after delay and returns stopErr when asked to stop.
func readyAfter(delay time.Duration, stopErr error) func(context.Context, []string, func(string) string, io.Writer) error {
	return func(ctx context.Context, _ []string, getenv func(string) string, stdout io.Writer) error {
		fmt.Fprintln(stdout, `{"msg":"starting"}`)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil
		}
		if err := sdnotify.FromEnv(getenv).Notify(sdnotify.Ready, sdnotify.Var("X_ADDR", getenv("ADDR"))); err != nil {
			return err
		}
		<-ctx.Done()
		return stopErr
	}
}

func TestStartFuncWaitsForReadyAndLearnsTheAddress(t *testing.T) {
	t.Parallel()
	p, err := proc.StartFunc(context.Background(), proc.Func{Name: "cmd", Run: readyAfter(200*time.Millisecond, nil), Env: map[string]string{"ADDR": "127.0.0.1:9"}})
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9", p.Addr("X_ADDR"))
	require.Equal(t, "http://127.0.0.1:9", p.URL("X_ADDR"))
	require.Len(t, p.Logs().Find("starting"), 1)
	require.NoError(t, p.Stop(5*time.Second))
	require.NoError(t, p.Stop(5*time.Second), "stopping twice is no error")
}

func TestNeverReadyFailsWithTheLog(t *testing.T) {
	t.Parallel()
	_, err := proc.StartFunc(context.Background(), proc.Func{Name: "cmd", Run: readyAfter(time.Hour, nil), ReadyTimeout: 200 * time.Millisecond})
	require.ErrorContains(t, err, "not ready within 200ms")
	require.ErrorContains(t, err, `{"msg":"starting"}`, "the process's log explains")
}

func TestExitBeforeReadyFailsAtOnce(t *testing.T) {
	t.Parallel()
	crash := func(context.Context, []string, func(string) string, io.Writer) error {
		return errors.New("no database")
	}
	start := time.Now()
	_, err := proc.StartFunc(context.Background(), proc.Func{Name: "cmd", Run: crash})
	require.ErrorContains(t, err, "exited before it was ready: no database")
	require.Less(t, time.Since(start), 10*time.Second, "not after the ready timeout")
}

func TestStopReportsAFailedShutdown(t *testing.T) {
	t.Parallel()
	p, err := proc.StartFunc(context.Background(), proc.Func{Name: "cmd", Run: readyAfter(0, errors.New("drain failed"))})
	require.NoError(t, err)
	require.ErrorContains(t, p.Stop(5*time.Second), "drain failed")
}
