package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

// TestProblemForTellsOutagesFromBugs: the errors of a database outage are a
// 503, a failing statement is a 500, and a client's broken body that
// carries an I/O error inside stays the client's 4xx.
func TestProblemForTellsOutagesFromBugs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"named outage", fmt.Errorf("create order: %w", apperr.ErrUnavailable), 503},
		{"server shutting down", fmt.Errorf("get order: %w", &pgconn.PgError{Code: "57P01"}), 503},
		{"server starting up", fmt.Errorf("get order: %w", &pgconn.PgError{Code: "57P03"}), 503},
		{"connection refused", fmt.Errorf("list: %w", syscall.ECONNREFUSED), 503},
		{"missing table: a bug", fmt.Errorf("get order: %w", &pgconn.PgError{Code: "42P01"}), 500},
		{"anything else", fmt.Errorf("boom"), 500},
		{"caller went away", fmt.Errorf("get order: %w", context.Canceled), 500},
		{"body ended early", echo.NewHTTPError(http.StatusBadRequest).SetInternal(io.ErrUnexpectedEOF), 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, body := problemFor(tt.err)
			require.Equal(t, tt.want, status)
			require.Equal(t, tt.want, body.Status)
		})
	}
}
