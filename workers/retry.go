package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/database"
)

// retry runs a failed handler again after a wait that starts at initial and
// doubles after every retry, up to maxWait; after maxRetries retries the
// last error goes up to the poison queue. Every failed attempt is followed
// by a wait, so no error makes a handler spin. Not Watermill's Retry
// middleware: its backoff grows faster than it says when its hooks are set,
// and its hook misses the first retry (docs/decisions.md).
type retry struct {
	maxRetries int
	initial    time.Duration
	maxWait    time.Duration
	// permanent reports an error that no retry can fix (a message that
	// cannot be decoded): it goes up at once.
	permanent func(error) bool
	// untilDone reports an error that is retried past maxRetries, until the
	// handler succeeds or the message's context ends (a task the broker has
	// not taken yet: the event is fine, it waits for the broker).
	untilDone func(error) bool
	retried   func() // called once per retry, the first one included
	logger    *slog.Logger
	// sleep waits d or until ctx ends; tests replace it to read the schedule.
	sleep func(ctx context.Context, d time.Duration) error
}

// wait is how long the retry numbered n (from 1) waits before its attempt.
func (r retry) wait(n int) time.Duration {
	d := r.initial
	for i := 1; i < n && d < r.maxWait; i++ {
		d *= 2
	}
	return min(d, r.maxWait)
}

func (r retry) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		// Each attempt starts from the message's own context: the timeout
		// middleware inside cancels the context of the attempt before.
		ctx := msg.Context()
		for n := 1; ; n++ {
			msg.SetContext(ctx)
			produced, err := h(msg)
			switch {
			case err == nil || r.permanent(err):
				return produced, err
			case ctx.Err() != nil: // shutting down: the message goes back to its queue
				return produced, fmt.Errorf("%w (message abandoned: %w)", err, ctx.Err())
			case n > r.maxRetries && !r.untilDone(err):
				return produced, err
			}
			wait := r.wait(n)
			r.retried()
			// An outage fails every handler at once; the pool and the
			// broker connection log its start and end, so each retry it
			// causes is a debug line (and the retry counter counts it).
			level := slog.LevelWarn
			if database.Unavailable(err) || errors.Is(err, apperr.ErrUnavailable) {
				level = slog.LevelDebug
			}
			r.logger.Log(ctx, level, "handler failed, retrying",
				slog.String("handler", message.HandlerNameFromCtx(ctx)),
				slog.String("message_id", msg.UUID),
				slog.Int("retry", n), slog.Int("max_retries", r.maxRetries),
				slog.String("wait", wait.String()), slog.String("error", err.Error()))
			if werr := r.sleep(ctx, wait); werr != nil {
				return nil, fmt.Errorf("%w (retry abandoned: %w)", err, werr)
			}
		}
	}
}

// sleepContext waits d, or less when ctx ends first.
func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
