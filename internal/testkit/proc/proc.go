// Package proc starts the service's commands for the e2e tests and the
// bench, as child processes (Start) or as their run function in this process
// (StartFunc), and waits until each says it is ready through the systemd
// notify protocol: READY=1 with the addresses it bound (internal/sdnotify),
// never by reading its log. It keeps the log for the failure output and
// stops the process with SIGTERM, then SIGKILL.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/sdnotify"
	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// DefaultReadyTimeout bounds the wait for READY=1 unless a Spec says otherwise.
const DefaultReadyTimeout = 60 * time.Second

// Build compiles each package (a path such as "./server") into dir, as a
// binary named after the package's last element.
func Build(ctx context.Context, dir string, pkgs ...string) error {
	for _, pkg := range pkgs {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, filepath.Base(pkg)), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("build %s: %w", pkg, err)
		}
	}
	return nil
}

// Spec is a child process to start.
type Spec struct {
	Name string   // in messages and log file names
	Path string   // the binary
	Args []string // its arguments
	// Env is its whole environment, KEY=VALUE; Start adds NOTIFY_SOCKET.
	Env []string
	// LogFile, when set, receives the output instead of memory: a long run
	// (the bench's, one line per request) is neither kept nor parsed.
	LogFile string
	// SysProcAttr is passed to the process (the bench starts each in a
	// session of its own).
	SysProcAttr *syscall.SysProcAttr
	// ReadyTimeout bounds the wait for READY=1 (DefaultReadyTimeout if zero).
	ReadyTimeout time.Duration
	// Until, when set, is the assignment to wait for instead of READY=1: an
	// address (process.HTTPAddr), for a process meant not to be ready.
	Until string
}

// Proc is a started process, ready.
type Proc struct {
	name    string
	logs    *testlog.Sink // nil when the output goes to logFile
	logFile string
	notify  *sdnotify.Listener
	ready   map[string]string

	cmd    *exec.Cmd          // a child process, or
	cancel context.CancelFunc // a run function in this process

	done    chan struct{} // closed when it has exited; err is then set
	err     error
	stopped bool // Stop or Kill has been called
}

// Start runs s and returns once the process has sent READY=1. It fails,
// with the end of the process's log, when the process exits first or
// ReadyTimeout passes; the process is then stopped.
func Start(ctx context.Context, s Spec) (*Proc, error) {
	n, err := sdnotify.Listen()
	if err != nil {
		return nil, err
	}
	p := &Proc{name: s.Name, notify: n, logFile: s.LogFile, done: make(chan struct{})}
	out, closeOut, err := p.output()
	if err != nil {
		_ = n.Close()
		return nil, err
	}
	cmd := exec.Command(s.Path, s.Args...) //nolint:noctx // stopped by Stop's signals, not a context
	cmd.Env = append(append([]string(nil), s.Env...), n.Env())
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = s.SysProcAttr
	if err := cmd.Start(); err != nil {
		_ = n.Close()
		closeOut()
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		closeOut()
		close(p.done)
	}()
	return p, p.waitReady(ctx, s.ReadyTimeout, s.Until)
}

// Func is a command's run function to start in this process, the way tests
// of one command start it.
type Func struct {
	Name string
	Run  process.Run
	Env  map[string]string // its whole environment; StartFunc adds NOTIFY_SOCKET
	// ReadyTimeout bounds the wait for READY=1 (DefaultReadyTimeout if zero).
	ReadyTimeout time.Duration
	// Until is as in Spec.
	Until string
}

// StartFunc runs f.Run until Stop and returns once it has sent READY=1, as
// Start does for a child process.
func StartFunc(ctx context.Context, f Func) (*Proc, error) {
	n, err := sdnotify.Listen()
	if err != nil {
		return nil, err
	}
	env := map[string]string{"NOTIFY_SOCKET": n.Socket()}
	for k, v := range f.Env {
		if k != "NOTIFY_SOCKET" {
			env[k] = v
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	p := &Proc{name: f.Name, notify: n, logs: testlog.NewSink(), cancel: cancel, done: make(chan struct{})}
	go func() {
		p.err = f.Run(runCtx, nil, func(k string) string { return env[k] }, p.logs)
		close(p.done)
	}()
	return p, p.waitReady(ctx, f.ReadyTimeout, f.Until)
}

func (p *Proc) output() (io.Writer, func(), error) {
	if p.logFile == "" {
		p.logs = testlog.NewSink()
		return p.logs, func() {}, nil
	}
	f, err := os.Create(p.logFile)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { _ = f.Close() }, nil
}

func (p *Proc) waitReady(ctx context.Context, timeout time.Duration, until string) error {
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ctx, stop := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("not ready within %s", timeout))
	defer stop()
	go func() {
		select {
		case <-p.done:
			cancel(fmt.Errorf("exited before it was ready: %w", p.exit()))
		case <-ctx.Done():
		}
	}()
	var ready map[string]string
	var err error
	if until != "" {
		ready, err = p.notify.WaitSet(ctx, until)
	} else {
		ready, err = p.notify.Wait(ctx, "READY", "1")
	}
	if err != nil {
		_ = p.Stop(5 * time.Second)
		return fmt.Errorf("%s: %w\n%s", p.name, err, p.Tail(50))
	}
	p.ready = ready
	return nil
}

// Addr is the address the process reported (with READY=1) under name
// (process.HTTPAddr, ...), empty if it reported none.
func (p *Proc) Addr(name string) string { return p.ready[name] }

// Wait waits for the process to notify name=value (STOPPING=1, or READY=1
// after Spec.Until) and returns every assignment it has sent.
func (p *Proc) Wait(ctx context.Context, name, value string) (map[string]string, error) {
	return p.notify.Wait(ctx, name, value)
}

// URL is "http://" and Addr(name).
func (p *Proc) URL(name string) string { return "http://" + p.Addr(name) }

// Pid is the child process's id (0 for a run function).
func (p *Proc) Pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Logs is the process's parsed log, nil when it goes to a LogFile.
func (p *Proc) Logs() *testlog.Sink { return p.logs }

// Log is everything the process has written.
func (p *Proc) Log() string {
	if p.logs != nil {
		return p.logs.String()
	}
	b, err := os.ReadFile(p.logFile)
	if err != nil {
		return fmt.Sprintf("(log %s unreadable: %v)", p.logFile, err)
	}
	return string(b)
}

// Tail is the last n lines of the log, with a note of where the whole is
// when it is longer: the log file, or one written now from memory.
func (p *Proc) Tail(n int) string {
	log := p.Log()
	lines := strings.SplitAfter(log, "\n")
	if len(lines) <= n {
		return log
	}
	where := p.logFile
	if where == "" {
		f, err := os.CreateTemp("", "orders-"+p.name+"-*.log")
		if err == nil {
			_, err = f.WriteString(log)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			where = "not saved: " + err.Error()
		} else {
			where = f.Name()
		}
	}
	return fmt.Sprintf("%s log: %d lines (%s), the last %d:\n%s", p.name, len(lines), where, n, strings.Join(lines[len(lines)-n:], ""))
}

// exit describes how the process exited: its error, or a clean exit.
func (p *Proc) exit() error {
	if p.err != nil {
		return p.err
	}
	return errClean
}

// errClean is an exit with status 0 (or a run that returned nil).
var errClean = errors.New("exit status 0")

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill ends the process at once (SIGKILL; a run function is cancelled) and
// waits for it, as a crash would.
func (p *Proc) Kill() {
	p.stopped = true
	if p.cmd == nil {
		p.cancel()
	} else {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
	_ = p.notify.Close()
}

// Stop asks the process to stop (SIGTERM; a run function's context is
// cancelled), waits up to grace, and then kills it. It returns nil when the
// process stops cleanly within grace or was already stopped (by Stop or
// Kill), else what went wrong: it had exited on its own, or with a status
// other than 0 (a run error), or had to be killed.
func (p *Proc) Stop(grace time.Duration) error {
	defer p.notify.Close() //nolint:errcheck // the socket's directory is temporary
	if p.stopped {
		return nil
	}
	p.stopped = true
	if exited, _ := p.Exited(); exited {
		return fmt.Errorf("%s: exited on its own: %w", p.name, p.exit())
	}
	if p.cmd == nil {
		p.cancel()
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s: stopped with %w", p.name, p.err)
		}
		return nil
	case <-t.C:
	}
	if p.cmd == nil {
		return fmt.Errorf("%s: not stopped within %s of cancellation", p.name, grace)
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("%s: not stopped within %s of SIGTERM; killed", p.name, grace)
}
