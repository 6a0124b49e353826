package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/apperr"
)

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
	case errors.As(err, &limited):
		return problem(http.StatusTooManyRequests, limited.detail, nil)
	case errors.Is(err, apperr.ErrUnavailable):
		return problem(http.StatusServiceUnavailable, "temporarily unavailable; retry after 1 s", nil)
	case errors.As(err, &httpErr):
		return echoProblem(httpErr)
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
			logger.Error("request failed", slog.String("request_id", requestID), slog.String("route", c.Path()), slog.Any("error", err))
		}
		if status == http.StatusUnauthorized {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, "Bearer")
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
