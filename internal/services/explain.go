package services

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Unreachable is a service that accepted no connection.
type Unreachable struct {
	Service Service
	Cause   error // the network's own reason: connection refused, no such host, i/o timeout
}

func (u *Unreachable) Error() string {
	return fmt.Sprintf("%s is not reachable at %s (%s): %v; run `%s`, or start it yourself",
		u.Service.Name, u.Service.Address(), u.Service.Variable, u.Cause, FixCommand)
}

func (u *Unreachable) Unwrap() error { return u.Cause }

// Explain turns a process's start error that is a failed dial to one of the
// configured services into an *Unreachable naming it; any other error,
// or a dial to an address none of them is at, is returned as it is.
func Explain(err error, getenv func(string) string) error {
	if err == nil || getenv == nil {
		return err
	}
	var op *net.OpError
	var dns *net.DNSError
	dialed := errors.As(err, &op) && op.Op == "dial" && op.Addr != nil
	named := errors.As(err, &dns)
	if !dialed && !named {
		return err
	}
	svcs, cfgErr := FromEnv(getenv)
	if cfgErr != nil {
		return err
	}
	for _, svc := range svcs {
		for _, t := range svc.targets {
			if (dialed && dialedTo(op, t)) || (named && !dialed && hostOf(t) == dns.Name) {
				return &Unreachable{Service: svc, Cause: cause(err)}
			}
		}
	}
	return err
}

// dialedTo tells whether a failed dial went to t: the same socket, or the
// same port on the address (or one the name resolves to) of t's host.
func dialedTo(op *net.OpError, t target) bool {
	if t.network == "unix" {
		return op.Net == "unix" && filepath.Clean(op.Addr.String()) == filepath.Clean(t.address)
	}
	if !strings.HasPrefix(op.Net, "tcp") {
		return false
	}
	dialHost, dialPort, err := net.SplitHostPort(op.Addr.String())
	if err != nil {
		return false
	}
	host, port, err := net.SplitHostPort(t.address)
	if err != nil || port != dialPort {
		return false
	}
	if host == dialHost {
		return true
	}
	if net.ParseIP(host) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return false
	}
	dialIP := net.ParseIP(dialHost)
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip != nil && ip.Equal(dialIP) {
			return true
		}
	}
	return false
}

func hostOf(t target) string {
	host, _, err := net.SplitHostPort(t.address)
	if err != nil {
		return t.address
	}
	return host
}

// cause is the network's reason without the libraries' wrapping, which
// repeats the address and, for pgx, the user and database.
func cause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return errors.New(dns.Err)
	}
	return err
}
