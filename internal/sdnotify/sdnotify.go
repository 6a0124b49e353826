// Package sdnotify speaks the systemd notify protocol (sd_notify(3)) from
// both ends: a process tells its service manager that it is ready or
// stopping, and the service manager (systemd with Type=notify, or a test
// harness) receives it.
//
// The protocol is one datagram per notification, sent to the unix socket
// named by NOTIFY_SOCKET, holding newline-separated KEY=VALUE assignments.
// The service manager acts on the assignments it knows (READY=1,
// STOPPING=1, STATUS=...) and ignores the others, so a process may add its
// own: ours carry the addresses it bound, named with an X_ prefix so that no
// name systemd defines can clash with them.
//
// The sender reads NOTIFY_SOCKET through the getenv a command's run is
// given, not through os.Getenv (as github.com/coreos/go-systemd's daemon
// package does): tests start run in-process, in parallel, each with its own
// environment and its own socket.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Well-known assignments (sd_notify(3)).
const (
	Ready    = "READY=1"    // start-up is finished: the process serves
	Stopping = "STOPPING=1" // shutdown has begun
)

// Status is a one-line, human-readable state, shown by systemctl status.
func Status(s string) string { return "STATUS=" + s }

// Var is an assignment of our own, name=value.
func Var(name, value string) string { return name + "=" + value }

// Notifier sends notifications to the socket named by NOTIFY_SOCKET. Its zero
// value (no socket: the process was not started by a service manager that
// listens) sends nothing.
type Notifier struct{ socket string }

// FromEnv returns the Notifier for NOTIFY_SOCKET in getenv.
func FromEnv(getenv func(string) string) Notifier {
	return Notifier{socket: getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether a service manager listens.
func (n Notifier) Enabled() bool { return n.socket != "" }

// Notify sends the assignments in one datagram. A socket name starting with
// "@" is in Linux's abstract namespace, as systemd's may be; Go's net package
// maps the "@" itself.
func (n Notifier) Notify(assignments ...string) error {
	if n.socket == "" {
		return nil
	}
	for _, a := range assignments {
		if !strings.Contains(a, "=") || strings.Contains(a, "\n") {
			return fmt.Errorf("sdnotify: %q is not one KEY=VALUE assignment", a)
		}
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: n.socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	_, err = conn.Write([]byte(strings.Join(assignments, "\n") + "\n"))
	return errors.Join(err, conn.Close())
}

// Listener is the service manager's end: a socket in a directory of its own
// that a child process (or a run started in-process) is given as
// NOTIFY_SOCKET. It keeps the latest value of every assignment received.
type Listener struct {
	dir  string
	conn *net.UnixConn

	mu      sync.Mutex
	state   map[string]string
	changed chan struct{} // closed and replaced at each notification
	err     error         // why receiving stopped
}

// maxDatagram bounds one notification; ours are a few hundred bytes.
const maxDatagram = 64 << 10

// Listen creates a notify socket in a new temporary directory.
func Listen() (*Listener, error) {
	// The directory is short (a unix socket path has at most 107 bytes) and
	// only its owner can enter it.
	dir, err := os.MkdirTemp("", "sdnotify-")
	if err != nil {
		return nil, fmt.Errorf("sdnotify: %w", err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("sdnotify: %w", err)
	}
	l := &Listener{dir: dir, conn: conn, state: map[string]string{}, changed: make(chan struct{})}
	go l.receive()
	return l, nil
}

// Socket is the value for the process's NOTIFY_SOCKET.
func (l *Listener) Socket() string { return l.conn.LocalAddr().String() }

// Env is the NOTIFY_SOCKET assignment for the process's environment.
func (l *Listener) Env() string { return "NOTIFY_SOCKET=" + l.Socket() }

func (l *Listener) receive() {
	buf := make([]byte, maxDatagram)
	for {
		n, err := l.conn.Read(buf)
		l.mu.Lock()
		if err != nil {
			l.err = err
		} else {
			for line := range strings.Lines(string(buf[:n])) {
				if k, v, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "="); ok {
					l.state[k] = v
				}
			}
		}
		close(l.changed)
		l.changed = make(chan struct{})
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Wait returns every assignment received so far once name has been set to
// value, or ctx's cause if it ends first.
func (l *Listener) Wait(ctx context.Context, name, value string) (map[string]string, error) {
	return l.wait(ctx, name+"="+value, func(state map[string]string) bool { return state[name] == value })
}

// WaitSet returns every assignment received so far once name has been set
// to anything, or ctx's cause if it ends first.
func (l *Listener) WaitSet(ctx context.Context, name string) (map[string]string, error) {
	return l.wait(ctx, name, func(state map[string]string) bool { _, ok := state[name]; return ok })
}

func (l *Listener) wait(ctx context.Context, what string, done func(map[string]string) bool) (map[string]string, error) {
	for {
		l.mu.Lock()
		state, changed, err := maps.Clone(l.state), l.changed, l.err
		l.mu.Unlock()
		if done(state) {
			return state, nil
		}
		if err != nil {
			return state, fmt.Errorf("sdnotify: %s never came: %w", what, err)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return state, fmt.Errorf("sdnotify: waiting for %s: %w", what, context.Cause(ctx))
		}
	}
}

// State returns every assignment received so far.
func (l *Listener) State() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.state)
}

// Close stops receiving and removes the socket.
func (l *Listener) Close() error {
	err := l.conn.Close()
	return errors.Join(err, os.RemoveAll(l.dir))
}
