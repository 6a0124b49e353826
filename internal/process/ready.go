package process

import (
	"context"
	"log/slog"
	"time"

	"github.com/ordersvc/orders/internal/sdnotify"
)

// The addresses a process reports with READY=1, so that whoever started it
// with port 0 (tests, the bench) learns the ports it was given. Each is the
// address bound for the setting of the same name without the X_ORDERS_.
const (
	HTTPAddr        = "X_ORDERS_HTTP_ADDR"         // the API (HTTP_ADDR)
	DebugAddr       = "X_ORDERS_DEBUG_ADDR"        // the profiler (DEBUG_ADDR), when on
	WorkersHTTPAddr = "X_ORDERS_WORKERS_HTTP_ADDR" // the workers' status endpoint (WORKERS_HTTP_ADDR)
)

// Addrs is the addresses to report: the main listener's under name, and the
// profiler's when it is on (debugAddr not empty).
func Addrs(name, addr, debugAddr string) map[string]string {
	addrs := map[string]string{name: addr}
	if debugAddr != "" {
		addrs[DebugAddr] = debugAddr
	}
	return addrs
}

// readyPoll is how often AnnounceReady asks the readiness check again.
const readyPoll = 100 * time.Millisecond

// AnnounceReady tells the service manager (NOTIFY_SOCKET in getenv) READY=1,
// with status and the bound addresses, as soon as ready passes: the check
// behind the process's /ready, so that a process is ready to its service
// manager exactly when its probe says so. It returns when it has told or ctx
// has ended. A notification that cannot be sent is logged, not fatal: the
// process serves all the same, and the service manager's start timeout says
// the rest.
func AnnounceReady(ctx context.Context, getenv func(string) string, logger *slog.Logger, ready func(context.Context) bool, status string, addrs map[string]string) {
	n := sdnotify.FromEnv(getenv)
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	for !ready(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	msg := []string{sdnotify.Ready, sdnotify.Status(status)}
	for name, addr := range addrs {
		msg = append(msg, sdnotify.Var(name, addr))
	}
	if err := n.Notify(msg...); err != nil {
		logger.Warn("could not tell the service manager we are ready", slog.Any("error", err))
	}
}

// AnnounceListening tells the service manager the addresses bound, with
// STATUS=starting, as soon as they are: a process that never becomes ready
// (its database not migrated) can still be reached to be asked why.
func AnnounceListening(getenv func(string) string, logger *slog.Logger, addrs map[string]string) {
	msg := []string{sdnotify.Status("starting")}
	for name, addr := range addrs {
		msg = append(msg, sdnotify.Var(name, addr))
	}
	if err := sdnotify.FromEnv(getenv).Notify(msg...); err != nil {
		logger.Warn("could not tell the service manager our addresses", slog.Any("error", err))
	}
}

// AnnounceStopping tells the service manager that shutdown has begun.
func AnnounceStopping(getenv func(string) string, logger *slog.Logger) {
	if err := sdnotify.FromEnv(getenv).Notify(sdnotify.Stopping, sdnotify.Status("stopping")); err != nil {
		logger.Warn("could not tell the service manager we are stopping", slog.Any("error", err))
	}
}
