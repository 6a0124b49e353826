// Package services names the three services the processes need (PostgreSQL,
// Redis, RabbitMQ) and where the configuration says they are, so that a
// missing one is reported by name, variable and address, with the command
// that starts it, instead of as a bare dial error. Addresses never carry the
// credentials of their URLs.
package services

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/redis/rueidis"

	"github.com/ordersvc/orders/internal/config"
)

// FixCommand starts the services on a development machine (Taskfile.yml).
const FixCommand = "task services"

// Service is one of the three, as the configuration points at it.
type Service struct {
	Name     string // PostgreSQL
	Variable string // DATABASE_URL
	// targets are where a client of the URL connects, first one first: a
	// host:port, or the path of a Unix socket.
	targets []target
}

type target struct {
	network string // "tcp" or "unix"
	address string
}

// Address is where the service is expected, for people: the URL's first
// host and port (or socket), without user or password.
func (s Service) Address() string {
	if len(s.targets) == 0 {
		return "(no address)"
	}
	return s.targets[0].address
}

// FromEnv reads the three URLs as the processes do (config.Load, with its
// defaults) and parses each with its client library's own parser.
func FromEnv(getenv func(string) string) ([]Service, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	pg, err := postgresTargets(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	redis, err := redisTargets(cfg.RedisURL)
	if err != nil {
		return nil, err
	}
	rabbit, err := amqpTargets(cfg.AMQPURL)
	if err != nil {
		return nil, err
	}
	return []Service{
		{Name: "PostgreSQL", Variable: "DATABASE_URL", targets: pg},
		{Name: "Redis", Variable: "REDIS_URL", targets: redis},
		{Name: "RabbitMQ", Variable: "AMQP_URL", targets: rabbit},
	}, nil
}

func postgresTargets(rawURL string) ([]target, error) {
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, errors.New("parse DATABASE_URL: not a valid PostgreSQL URL")
	}
	hosts := []target{postgresTarget(cfg.Host, cfg.Port)}
	for _, fb := range cfg.Fallbacks {
		hosts = append(hosts, postgresTarget(fb.Host, fb.Port))
	}
	return hosts, nil
}

func postgresTarget(host string, port uint16) target {
	if strings.HasPrefix(host, "/") { // a socket directory, as libpq reads it
		return target{network: "unix", address: filepath.Join(host, ".s.PGSQL."+strconv.Itoa(int(port)))}
	}
	return target{network: "tcp", address: net.JoinHostPort(host, strconv.Itoa(int(port)))}
}

func redisTargets(rawURL string) ([]target, error) {
	opt, err := rueidis.ParseURL(rawURL)
	if err != nil {
		return nil, errors.New("parse REDIS_URL: not a valid Redis URL")
	}
	hosts := make([]target, 0, len(opt.InitAddress))
	for _, addr := range opt.InitAddress {
		network := "tcp"
		if strings.HasPrefix(addr, "/") {
			network = "unix"
		}
		hosts = append(hosts, target{network: network, address: addr})
	}
	return hosts, nil
}

func amqpTargets(rawURL string) ([]target, error) {
	uri, err := amqp091.ParseURI(rawURL)
	if err != nil {
		return nil, errors.New("parse AMQP_URL: not a valid AMQP URL")
	}
	return []target{{network: "tcp", address: net.JoinHostPort(uri.Host, strconv.Itoa(uri.Port))}}, nil
}

// Check dials every service at once and returns an *Unreachable for each
// that accepts no connection on any of its addresses within timeout.
func Check(ctx context.Context, svcs []Service, timeout time.Duration) []error {
	errs := make([]error, len(svcs))
	var wg sync.WaitGroup
	for i, svc := range svcs {
		wg.Go(func() { errs[i] = reach(ctx, svc, timeout) })
	}
	wg.Wait()
	var unreachable []error
	for _, err := range errs {
		if err != nil {
			unreachable = append(unreachable, err)
		}
	}
	return unreachable
}

func reach(ctx context.Context, svc Service, timeout time.Duration) error {
	dialer := net.Dialer{Timeout: timeout}
	var first error
	for _, t := range svc.targets {
		conn, err := dialer.DialContext(ctx, t.network, t.address)
		if err == nil {
			return conn.Close()
		}
		if first == nil {
			first = err
		}
	}
	return &Unreachable{Service: svc, Cause: cause(first)}
}
