// Package cache is the service's use of Redis, built so that Redis can fail
// without the API failing or slowing down: every call has a short deadline,
// and a circuit breaker stops calling an unavailable Redis at all until a
// background probe finds it answering again. On top of that client, Store
// keeps versioned values that a late, stale write can never overwrite.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/ordersvc/orders/internal/cache/pin"
)

// ErrUnavailable is returned instead of calling Redis while the breaker is open.
var ErrUnavailable = errors.New("redis unavailable (circuit open)")

// Options configure Open.
type Options struct {
	URL string
	// Timeout bounds every call. rueidis otherwise waits for an unreachable
	// Redis until the caller's context ends.
	Timeout time.Duration
	// Failures is how many consecutive failed calls make the breaker check,
	// with one PING under ProbeTimeout, whether Redis is down.
	Failures int
	// ProbeTimeout bounds that PING and the probes while the breaker is
	// open: long enough for a healthy Redis to answer a machine whose cores
	// are busy elsewhere.
	ProbeTimeout time.Duration
	// Cooldown is how long the breaker stays open before each probe.
	Cooldown time.Duration
	Logger   *slog.Logger
}

// Redis is a rueidis client behind a per-call deadline and a circuit breaker.
type Redis struct {
	// client is nil until Redis has answered once: a cluster or Sentinel
	// client can only be made by talking to its nodes, so when they are
	// unreachable at start, the breaker's probe makes it later.
	client       atomic.Pointer[rueidis.Client]
	clientOpt    rueidis.ClientOption
	timeout      time.Duration
	probeTimeout time.Duration
	breaker      *breaker
	logger       *slog.Logger
	closeOnce    sync.Once
	connectMu    sync.Mutex
}

// Open returns a client for opts.URL: one Redis, a Redis Cluster (several
// seed addresses, ?addr=host:port&addr=...; one seed that turns out to be a
// cluster node works too) or a Sentinel-managed master (?master_set=NAME,
// the addresses then being the sentinels'), in rueidis's URL forms. An
// unreachable Redis is not an error: the client starts with the breaker open
// and connects when Redis answers. Only an unusable configuration is.
func Open(opts Options) (*Redis, error) {
	ropt, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	// Our deadline is the whole budget of a call: no retries inside it.
	// (A cluster client still follows MOVED and ASK redirects.)
	ropt.DisableRetry = true
	// No client-side caching: its invalidations arrive asynchronously, so a
	// read on this instance right after a PATCH on another one could return
	// the old order (see Store).
	ropt.DisableCache = true
	ropt.Dialer.Timeout = time.Second
	// rueidis gives each connection 0.5 MiB read and write buffers by
	// default (4 pipelined connections: 4 MiB of heap); our commands and
	// replies are a few KiB, and a larger one still passes through a
	// smaller buffer.
	ropt.ReadBufferEachConn = connBufferBytes
	ropt.WriteBufferEachConn = connBufferBytes
	// A connection that stops answering is dropped after this long (rueidis
	// pings idle connections at the same interval).
	ropt.ConnWriteTimeout = 3 * time.Second
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 50 * time.Millisecond
	}
	if opts.Cooldown <= 0 {
		opts.Cooldown = time.Second
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = time.Second
	}
	r := &Redis{
		clientOpt:    ropt,
		timeout:      opts.Timeout,
		probeTimeout: opts.ProbeTimeout,
		logger:       logger,
	}
	r.breaker = newBreaker(max(opts.Failures, 1), opts.Cooldown, r)
	if _, err := r.connect(); err != nil {
		if errors.Is(err, errConfig) {
			return nil, err
		}
		r.breaker.trip(err)
	}
	return r, nil
}

// connBufferBytes is the size of each Redis connection's read and write
// buffer.
const connBufferBytes = 64 << 10

// errConfig marks a client rueidis refuses to make whatever Redis answers.
var errConfig = errors.New("redis client configuration")

// connect returns the client, making it first if Redis has not answered yet.
// rueidis finds out what the address is: with one address and no master
// set, it asks CLUSTER SHARDS and makes a cluster client or, when the node
// is not in a cluster, a client for that one Redis.
func (r *Redis) connect() (rueidis.Client, error) {
	if c := r.client.Load(); c != nil {
		return *c, nil
	}
	r.connectMu.Lock()
	defer r.connectMu.Unlock()
	if c := r.client.Load(); c != nil {
		return *c, nil
	}
	c, err := rueidis.NewClient(r.clientOpt)
	if err != nil {
		if c != nil {
			c.Close()
		}
		if isConfigError(err) {
			return nil, fmt.Errorf("%w: %w", errConfig, err)
		}
		return nil, fmt.Errorf("connect to redis: %w", err)
	}
	c = pin.Client(c) // see package pin: the race detector cannot see rueidis reuse a command
	r.client.Store(&c)
	r.logger.Debug("redis client ready", slog.String("mode", string(c.Mode())))
	return c, nil
}

// isConfigError tells the errors of an impossible option set from the
// errors of talking to Redis.
func isConfigError(err error) bool {
	return errors.Is(err, rueidis.ErrNoSendToReplicas) || errors.Is(err, rueidis.ErrReplicaOnlyConflict) ||
		errors.Is(err, rueidis.ErrWrongPipelineMultiplex)
}

// Do runs fn with the call deadline, or returns ErrUnavailable at once while
// the breaker is open. A reply from Redis, even an error reply, counts as
// Redis being available; a timeout or a network error counts as a failure.
func (r *Redis) Do(ctx context.Context, fn func(ctx context.Context, c rueidis.Client) error) error {
	if !r.breaker.allow() {
		return ErrUnavailable
	}
	client := r.client.Load()
	if client == nil {
		return ErrUnavailable
	}
	// The call's own deadline bounds it; the caller's cancellation (a client
	// gone) is left out, so that the many short calls do not each register
	// with the request's context (a lock and a map) for a wait of at most
	// the timeout.
	callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	err := fn(callCtx, *client)
	cancel()
	var reply *rueidis.RedisError
	switch {
	case err == nil, errors.As(err, &reply):
		r.breaker.success()
	case ctx.Err() != nil:
		// The caller went away; that says nothing about Redis.
	default:
		r.breaker.failure(err)
	}
	return err
}

// Available reports whether calls currently go to Redis (breaker closed).
func (r *Redis) Available() bool { return r.breaker.allow() }

// Ping checks Redis through Do, so a failure counts towards the breaker.
func (r *Redis) Ping(ctx context.Context) error {
	return r.Do(ctx, func(ctx context.Context, c rueidis.Client) error {
		return c.Do(ctx, c.B().Ping().Build()).Error()
	})
}

// Close stops the probe and closes the connections.
func (r *Redis) Close() {
	r.closeOnce.Do(func() {
		r.breaker.stop()
		if c := r.client.Load(); c != nil {
			(*c).Close()
		}
	})
}

// probe is the breaker's check and half-open trial: one PING, outside any
// request, under the probe deadline. On a cluster it PINGs every node and
// Redis counts as available when one answers: a master that died fails only
// the calls on its slots (they fall back one by one) until its replica takes
// over, while the other masters keep serving.
func (r *Redis) probe() error {
	c, err := r.connect()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.probeTimeout)
	defer cancel()
	if c.Mode() != rueidis.ClientModeCluster {
		return c.Do(ctx, c.B().Ping().Build()).Error()
	}
	nodes := c.Nodes()
	answers := make(chan error, len(nodes))
	for _, node := range nodes {
		go func() { answers <- node.Do(ctx, node.B().Ping().Build()).Error() }()
	}
	err = errors.New("no redis cluster node known")
	for range nodes {
		e := <-answers
		if e == nil {
			return nil
		}
		err = e
	}
	return fmt.Errorf("no redis cluster node answers: %w", err)
}

// Masters returns a client for each master: the one Redis, the Sentinel's
// current master, or every master of a cluster (asked for its ROLE, since
// the nodes rueidis knows include the replicas). For what has to visit
// every key, such as a SCAN.
func (r *Redis) Masters(ctx context.Context) ([]rueidis.Client, error) {
	client := r.client.Load()
	if client == nil {
		return nil, ErrUnavailable
	}
	c := *client
	if c.Mode() != rueidis.ClientModeCluster {
		return []rueidis.Client{c}, nil
	}
	var masters []rueidis.Client
	for addr, node := range c.Nodes() {
		callCtx, cancel := context.WithTimeout(ctx, r.probeTimeout)
		role, err := node.Do(callCtx, node.B().Role().Build()).ToArray()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("role of redis node %s: %w", addr, err)
		}
		if len(role) > 0 {
			if kind, _ := role[0].ToString(); kind == "master" {
				masters = append(masters, node)
			}
		}
	}
	return masters, nil
}
