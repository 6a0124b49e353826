package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordersvc/orders/internal/apperr"
)

// Unavailable reports whether err says that PostgreSQL could not be reached
// or dropped the connection: it is restarting, shutting down, refusing
// connections, or the network to it failed. Such a failure is an outage,
// which a later attempt may not meet; every other error from a statement
// (a constraint, a missing table, bad data) is not, and neither is the
// caller's own context ending.
func Unavailable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		pgErr      *pgconn.PgError
		netErr     net.Error
	)
	switch {
	case err == nil:
		return false
	case errors.As(err, &connectErr): // even when connect_timeout ended it
		return true
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case errors.As(err, &pgErr):
		return unavailableState(pgErr.Code)
	}
	return errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// unavailableState: SQLSTATE class 08 (connection exception), 57P (the
// server is shutting down, crashed, starting up, or the database is gone)
// and 53300 (too many connections).
func unavailableState(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57P") || code == "53300"
}

// Classify marks an outage so that it matches apperr.ErrUnavailable (the
// original error still matches too); any other error is returned as is.
func Classify(err error) error {
	if Unavailable(err) && !errors.Is(err, apperr.ErrUnavailable) {
		return fmt.Errorf("%w: %w", apperr.ErrUnavailable, err)
	}
	return err
}

// InTx runs fn in one transaction on pool: committed if fn succeeds, rolled
// back otherwise. A transaction that met an outage and certainly did not
// commit runs once more, on a fresh connection: after a restart every pooled
// connection is dead, and one retry hides that from the caller. A COMMIT
// whose fate is unknown (it was sent, then the connection failed) is never
// repeated. An outage that outlasts the retry matches apperr.ErrUnavailable.
func InTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) error {
	committing, err := tryTx(ctx, pool, fn)
	if err == nil || ctx.Err() != nil || !retryable(err, committing) {
		return Classify(err)
	}
	_, err = tryTx(ctx, pool, fn)
	return Classify(err)
}

// retryable: nothing was sent (pgconn says so), or the failure came before
// the COMMIT and was an outage, which PostgreSQL answers by rolling back.
func retryable(err error, committing bool) bool {
	if pgconn.SafeToRetry(err) {
		return true
	}
	return !committing && Unavailable(err)
}

// tryTx runs one attempt; committing tells whether COMMIT was sent.
func tryTx(ctx context.Context, pool *pgxpool.Pool, fn func(tx pgx.Tx) error) (committing bool, err error) {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return true, fmt.Errorf("commit: %w", err)
	}
	return true, nil
}

// outageWatch is a pgx tracer that sees every statement, batch and
// connection attempt of the pool. At the first outage it closes every idle
// connection: after a restart all of them are dead, and a busy pool hands
// them out without a liveness check (pgxpool pings only connections idle for
// over a second), so each would fail one more request; connections in use
// are closed when released. It also logs the outage once when it begins and
// once when a statement succeeds again, both at warn, so that an outage is
// two lines however many requests it fails.
type outageWatch struct {
	pool   atomic.Pointer[pgxpool.Pool]
	down   atomic.Bool
	logger *slog.Logger
}

func (w *outageWatch) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

func (w *outageWatch) TraceQueryEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	w.observe(data.Err)
}

func (w *outageWatch) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (w *outageWatch) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

// TraceBatchEnd sees a batch's first error, or its success.
func (w *outageWatch) TraceBatchEnd(_ context.Context, _ *pgx.Conn, data pgx.TraceBatchEndData) {
	w.observe(data.Err)
}

func (w *outageWatch) TraceConnectStart(ctx context.Context, _ pgx.TraceConnectStartData) context.Context {
	return ctx
}

func (w *outageWatch) TraceConnectEnd(_ context.Context, data pgx.TraceConnectEndData) {
	if data.Err != nil { // a connection that works says nothing until it runs a statement
		w.observe(data.Err)
	}
}

// observe runs after every statement: the common case, a success while
// PostgreSQL is up, is one atomic load. A statement on a connection pgx had
// already closed (ErrConnClosed) says nothing new: either an outage was seen
// on that connection first, or this side closed it, as pgx does when a
// caller's context ends mid-statement (a process stopping, a client gone)
// and the rollback that follows finds it closed.
func (w *outageWatch) observe(err error) {
	switch {
	case err == nil:
		if w.down.Load() && w.down.CompareAndSwap(true, false) {
			w.logger.Warn("PostgreSQL available again")
		}
	case errors.Is(err, pgconn.ErrConnClosed):
	case Unavailable(err):
		if pool := w.pool.Load(); pool != nil {
			pool.Reset()
		}
		if w.down.CompareAndSwap(false, true) {
			w.logger.Warn("PostgreSQL unavailable: requests that need it answer 503 until it is back", slog.Any("error", err))
		}
	}
}
