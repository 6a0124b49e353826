package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/events"
)

// recordedRetry is a retry whose waits are recorded instead of slept.
type recordedRetry struct {
	retry
	waits   []time.Duration
	retries int
}

func newRecordedRetry(maxRetries int) *recordedRetry {
	r := &recordedRetry{}
	r.retry = retry{
		maxRetries: maxRetries,
		initial:    200 * time.Millisecond, // HANDLER_RETRY_BACKOFF's default
		maxWait:    maxRetryWait,
		permanent:  func(err error) bool { return errors.Is(err, events.ErrUndecodable) },
		untilDone:  func(err error) bool { return errors.Is(err, errTaskNotPublished) },
		retried:    func() { r.retries++ },
		logger:     slog.New(slog.DiscardHandler),
		sleep: func(_ context.Context, d time.Duration) error {
			r.waits = append(r.waits, d)
			return nil
		},
	}
	return r
}

// failing is a handler that fails its first n attempts, counting them all.
func failing(n int, err error, attempts *int) message.HandlerFunc {
	return func(*message.Message) ([]*message.Message, error) {
		*attempts++
		if *attempts <= n {
			return nil, err
		}
		return nil, nil
	}
}

var errTransient = errors.New("database unavailable")

// The schedule the README documents: HANDLER_RETRY_BACKOFF, doubling after
// each retry, never more than 30 s; every retry counted, the first included.
func TestRetryWaitsDoubleFromTheFirstBackoff(t *testing.T) {
	t.Parallel()
	r := newRecordedRetry(10)
	attempts := 0
	_, err := r.middleware(failing(100, errTransient, &attempts))(message.NewMessage("m1", nil))

	require.ErrorIs(t, err, errTransient)
	ms := time.Millisecond
	require.Equal(t, []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 6400 * ms, 12800 * ms, 25600 * ms, 30 * time.Second, 30 * time.Second}, r.waits)
	require.Equal(t, 11, attempts, "the first attempt and 10 retries")
	require.Equal(t, 10, r.retries, "every retry counted")
}

func TestRetryOutcomes(t *testing.T) {
	t.Parallel()
	undecodable := fmt.Errorf("%w: bad json", events.ErrUndecodable)
	notPublished := fmt.Errorf("order 1: %w: not connected to AMQP", errTaskNotPublished)
	for _, tc := range []struct {
		name       string
		maxRetries int
		failures   int
		err        error
		wantErr    error
		wantWaits  int // retries taken
	}{
		{"succeeds at once", 5, 0, errTransient, nil, 0},
		{"succeeds on the third retry", 5, 3, errTransient, nil, 3},
		{"gives up after the last retry", 5, 100, errTransient, errTransient, 5},
		{"no retries configured", 0, 100, errTransient, errTransient, 0},
		{"undecodable: no retry", 5, 100, undecodable, events.ErrUndecodable, 0},
		{"task not published: retried past the limit until it is", 2, 9, notPublished, nil, 9},
		{"task not published, no retries configured: still retried", 0, 3, notPublished, nil, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRecordedRetry(tc.maxRetries)
			attempts := 0
			_, err := r.middleware(failing(tc.failures, tc.err, &attempts))(message.NewMessage("m1", nil))
			if tc.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tc.wantErr)
			}
			require.Len(t, r.waits, tc.wantWaits)
			require.Equal(t, tc.wantWaits, r.retries)
			require.Equal(t, tc.wantWaits+1, attempts)
		})
	}
}

// Shutdown during a wait ends the retries with an error that says so, so
// the poison queue hands the message back instead of parking it.
func TestRetryStopsWhenTheMessageContextEnds(t *testing.T) {
	t.Parallel()
	r := newRecordedRetry(5)
	r.sleep = sleepContext
	ctx, cancel := context.WithCancel(t.Context())
	msg := message.NewMessage("m1", nil)
	msg.SetContext(ctx)
	attempts := 0
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := r.middleware(failing(100, errTransient, &attempts))(msg)

	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, errTransient)
	require.Less(t, time.Since(start), time.Second, "the 200 ms wait is cut short")
	require.Equal(t, 1, attempts)
}

// Each attempt gets the message's own context back: an attempt that
// cancelled its context (the timeout middleware does) does not doom the next.
func TestRetryGivesEachAttemptTheMessageContext(t *testing.T) {
	t.Parallel()
	r := newRecordedRetry(3)
	msg := message.NewMessage("m1", nil)
	attempts := 0
	_, err := r.middleware(func(m *message.Message) ([]*message.Message, error) {
		attempts++
		if err := m.Context().Err(); err != nil {
			return nil, err
		}
		ctx, cancel := context.WithCancel(m.Context())
		cancel()
		m.SetContext(ctx)
		if attempts < 3 {
			return nil, errTransient
		}
		return nil, nil
	})(msg)
	require.NoError(t, err)
	require.Equal(t, 3, attempts)
}
