package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/database"
)

// outageRetryAfter is the Retry-After of a 503, in seconds: a PostgreSQL
// restart is over in well under a second, and the first retry should find
// it back.
const outageRetryAfter = 1

// problemFor is the one place where an error becomes an HTTP status and an
// RFC 9457 body. Anything it does not recognise is a 500 whose detail says
// nothing about internals; the error itself goes to the log.
func problemFor(err error) (int, api.Problem) {
	var (
		invalid    *requestInvalid
		validation *apperr.ValidationError
		conflict   *apperr.ConflictError
		httpErr    *echo.HTTPError
		limited    *tooManyRequests
		missing    *apperr.MissingError
	)
	switch {
	case errors.As(err, &invalid):
		return problem(invalid.status, "the request does not match the contract", invalid.fields)
	case errors.As(err, &validation):
		return problem(http.StatusUnprocessableEntity, "the request is not acceptable", validation.Fields)
	case errors.Is(err, apperr.ErrUnauthenticated):
		return problem(http.StatusUnauthorized, "missing, invalid or expired credentials", nil)
	case errors.Is(err, apperr.ErrForbidden):
		return problem(http.StatusForbidden, "the resource belongs to another user", nil)
	case errors.Is(err, apperr.ErrNotFound):
		return problem(http.StatusNotFound, "no such resource", nil)
	case errors.As(err, &conflict):
		return problem(http.StatusConflict, conflict.Detail, nil)
	case errors.Is(err, apperr.ErrInProgress):
		return problem(http.StatusConflict, "a request with this Idempotency-Key is still in progress; retry after 1 s for its answer", nil)
	case errors.Is(err, apperr.ErrPreconditionFailed):
		return problem(http.StatusPreconditionFailed, "the order has changed since the version If-Match names; nothing was changed", nil)
	case errors.Is(err, apperr.ErrPreconditionRequired):
		return problem(http.StatusPreconditionRequired, "this server changes an order only with If-Match naming its current ETag", nil)
	case errors.As(err, &missing):
		return problem(http.StatusBadRequest, missing.Error(), []apperr.FieldError{{Field: missing.Field, Message: "is required by this server"}})
	case errors.Is(err, apperr.ErrAlreadyExists):
		return problem(http.StatusBadRequest, "email already registered", nil)
	case errors.Is(err, apperr.ErrInvalidGrant):
		return oauthProblem(http.StatusBadRequest, "invalid_grant", "the refresh token is invalid, expired, revoked or already used")
	case errors.As(err, &limited):
		return problem(http.StatusTooManyRequests, limited.detail, nil)
	case errors.Is(err, apperr.ErrBusy):
		return problem(http.StatusServiceUnavailable, fmt.Sprintf("too many passwords are being checked at once; retry after %d s", outageRetryAfter), nil)
	case errors.As(err, &httpErr):
		return echoProblem(httpErr)
	// An outage a domain package named, or a driver error it passed on.
	// After Echo's errors: a body that ends early (io.EOF inside an
	// echo.HTTPError) is the client's problem, not an outage.
	case errors.Is(err, apperr.ErrUnavailable), database.Unavailable(err):
		return problem(http.StatusServiceUnavailable, fmt.Sprintf("the database is unavailable; retry after %d s", outageRetryAfter), nil)
	default:
		return problem(http.StatusInternalServerError, "unexpected error; it has been logged", nil)
	}
}

// echoProblem covers the errors Echo raises itself: unknown route, wrong
// method, oversized body, and body binding after validation.
func echoProblem(e *echo.HTTPError) (int, api.Problem) {
	switch e.Code {
	case http.StatusNotFound:
		return problem(e.Code, "no such path", nil)
	case http.StatusMethodNotAllowed:
		return problem(e.Code, "method not allowed on this path", nil)
	case http.StatusRequestEntityTooLarge:
		return problem(e.Code, "request body is larger than 1 MiB", nil)
	case http.StatusBadRequest, http.StatusUnsupportedMediaType:
		// Binding what the validator accepted can still fail on exactness
		// (a price with more than two decimals) or range: a field problem.
		return problem(http.StatusUnprocessableEntity, "the request is not acceptable", bindingFields(e))
	default:
		return problem(http.StatusInternalServerError, "unexpected error; it has been logged", nil)
	}
}

// oauthProblem is a problem that also carries an RFC 6749 error code, for
// OAuth clients that read only that.
func oauthProblem(status int, code, detail string) (int, api.Problem) {
	status, p := problem(status, detail, nil)
	p.Error = &code
	return status, p
}

func problem(status int, detail string, fields []apperr.FieldError) (int, api.Problem) {
	p := api.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: &detail}
	if len(fields) > 0 {
		list := make([]api.FieldError, len(fields))
		for i, f := range fields {
			list[i] = api.FieldError{Field: f.Field, Message: f.Message}
		}
		p.Errors = &list
	}
	return status, p
}

// errorHandler is Echo's HTTPErrorHandler: every non-2xx answer goes through it.
func errorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		status, body := problemFor(err)
		requestID := c.Response().Header().Get(echo.HeaderXRequestID)
		if requestID != "" {
			body.RequestId = &requestID
		}
		if status >= 500 && !errors.Is(err, context.Canceled) {
			logger.Log(c.Request().Context(), levelOf(status), "request failed",
				slog.String("request_id", requestID), slog.String("route", c.Path()), slog.Any("error", err))
		}
		switch status {
		case http.StatusUnauthorized:
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, "Bearer")
		case http.StatusServiceUnavailable:
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(outageRetryAfter))
		}
		if (status == http.StatusServiceUnavailable || errors.Is(err, apperr.ErrInProgress)) && c.Response().Header().Get(echo.HeaderRetryAfter) == "" {
			c.Response().Header().Set(echo.HeaderRetryAfter, "1")
		}
		c.Response().Header().Set(echo.HeaderContentType, "application/problem+json")
		c.Response().WriteHeader(status)
		if c.Request().Method == http.MethodHead {
			return
		}
		if err := json.NewEncoder(c.Response()).Encode(body); err != nil {
			logger.Debug("write problem", slog.Any("error", err))
		}
	}
}

// levelOf is the log level of an answer: an error for a bug (5xx), debug
// for an outage (503), which is the dependency's fault and ends by itself,
// and info for the rest.
func levelOf(status int) slog.Level {
	switch {
	case status == http.StatusServiceUnavailable:
		// An outage fails many requests; the pool logs its start and end
		// once each (database.Open), and the access log has every request.
		return slog.LevelDebug
	case status >= 500:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}
