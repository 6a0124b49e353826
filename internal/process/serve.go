package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"
)

// ServeHTTP serves srv on ln until ctx ends, then shuts it down: it stops
// accepting at once, and the requests in flight get up to timeout
// (SHUTDOWN_TIMEOUT) to finish.
func ServeHTTP(ctx context.Context, srv *http.Server, ln net.Listener, timeout time.Duration) error {
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// Drain waits for g, whose context has ended, up to timeout, and returns its
// first error. What has not stopped by then is abandoned to the process's
// exit: a message in hand stays unacked and is redelivered.
func Drain(g *errgroup.Group, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return fmt.Errorf("not stopped within %s", timeout)
	}
}
