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
	"time"

	"github.com/redis/rueidis"
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
	client       rueidis.Client
	timeout      time.Duration
	probeTimeout time.Duration
	breaker      *breaker
	logger       *slog.Logger
	closeOnce    sync.Once
}

// Open returns a client for opts.URL. An unreachable Redis is not an error:
// the client starts with the breaker open and connects when Redis answers.
// Only an unusable configuration is.
func Open(opts Options) (*Redis, error) {
	ropt, err := rueidis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	// One standalone Redis, as in the original service. ForceSingleClient
	// also returns a usable client when the first dial fails, so the API can
	// start during a Redis outage; rueidis redials on later calls.
	ropt.ForceSingleClient = true
	// Our deadline is the whole budget of a call: no retries inside it.
	ropt.DisableRetry = true
	// No client-side caching: its invalidations arrive asynchronously, so a
	// read on this instance right after a PATCH on another one could return
	// the old order (see Store).
	ropt.DisableCache = true
	ropt.Dialer.Timeout = time.Second
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
	client, dialErr := rueidis.NewClient(ropt)
	if client == nil {
		return nil, fmt.Errorf("redis client: %w", dialErr)
	}
	r := &Redis{
		client:       client,
		timeout:      opts.Timeout,
		probeTimeout: opts.ProbeTimeout,
		logger:       logger,
	}
	r.breaker = newBreaker(max(opts.Failures, 1), opts.Cooldown, r)
	if dialErr != nil {
		r.breaker.trip(dialErr)
	}
	return r, nil
}

// Do runs fn with the call deadline, or returns ErrUnavailable at once while
// the breaker is open. A reply from Redis, even an error reply, counts as
// Redis being available; a timeout or a network error counts as a failure.
func (r *Redis) Do(ctx context.Context, fn func(ctx context.Context, c rueidis.Client) error) error {
	if !r.breaker.allow() {
		return ErrUnavailable
	}
	callCtx, cancel := context.WithTimeout(ctx, r.timeout)
	err := fn(callCtx, r.client)
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
		r.client.Close()
	})
}

// probe is the breaker's check and half-open trial: one PING, outside any
// request, under the probe deadline.
func (r *Redis) probe() error {
	ctx, cancel := context.WithTimeout(context.Background(), r.probeTimeout)
	defer cancel()
	return r.client.Do(ctx, r.client.B().Ping().Build()).Error()
}
