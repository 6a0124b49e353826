package main

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// answerErrorsAsProblems serves h, a handler we do not own (the Swagger UI's
// assets), but turns an error status it chooses into an Echo error, so that
// its 404 and 405 are problem+json like every other error instead of its own
// text/plain.
func answerErrorsAsProblems(h http.Handler) echo.HandlerFunc {
	return func(c echo.Context) error {
		w := &errorCatcher{ResponseWriter: c.Response()}
		h.ServeHTTP(w, c.Request())
		if w.status != 0 {
			return echo.NewHTTPError(w.status)
		}
		return nil
	}
}

// errorCatcher passes a handler's answer through unless its status is an
// error: then the status is kept for the caller and the body discarded.
type errorCatcher struct {
	http.ResponseWriter
	status int
}

func (w *errorCatcher) WriteHeader(code int) {
	if code >= http.StatusBadRequest {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *errorCatcher) Write(b []byte) (int, error) {
	if w.status != 0 {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *errorCatcher) Unwrap() http.ResponseWriter { return w.ResponseWriter }
