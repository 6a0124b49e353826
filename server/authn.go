package main

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/auth"
)

// authFailureKey is where authenticate leaves a failed authentication for
// refuseUnauthenticated, once the rate limiter has charged it.
const authFailureKey = "orders.auth_failure"

// authenticator decides authentication from the headers alone, before any
// budget is drawn on and before a body is read, for the operations that
// declare security in openapi.yaml. It only records the outcome: the user in
// the request context, or the failure for refuseUnauthenticated. Between the
// two, the rate limiter charges a failure to the client address's budget, so
// a flood of bad tokens meets 429 like any other anonymous flood.
type authenticator struct {
	secured      map[operationKey]bool
	authenticate func(token string) (int64, error)
}

func newAuthenticator(spec *openapi3.T, authenticate func(string) (int64, error)) *authenticator {
	return &authenticator{secured: securedRoutes(spec), authenticate: authenticate}
}

// securedRoutes lists the operations whose security requirements cannot be
// met without credentials (an empty requirement would make them optional).
func securedRoutes(spec *openapi3.T) map[operationKey]bool {
	out := map[operationKey]bool{}
	for key, op := range contractOperations(spec) {
		reqs := spec.Security
		if op.Security != nil {
			reqs = *op.Security
		}
		secured := len(reqs) > 0
		for _, r := range reqs {
			if len(r) == 0 {
				secured = false
			}
		}
		if secured {
			out[key] = true
		}
	}
	return out
}

// checkRoutes fails unless every secured operation is a route of e, so that
// a route the lookup misses (a renamed parameter, say) stops the start
// instead of going unauthenticated past this middleware.
func (a *authenticator) checkRoutes(e *echo.Echo) error {
	routes := map[operationKey]bool{}
	for _, r := range e.Routes() {
		routes[operationKey{r.Method, r.Path}] = true
	}
	for k := range a.secured {
		if !routes[k] {
			return fmt.Errorf("secured operation %s %s has no route", k.method, k.route)
		}
	}
	return nil
}

// record is the middleware: Echo has routed the request, so c.Path() is the
// route template.
func (a *authenticator) record(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !a.secured[operationKey{c.Request().Method, c.Path()}] {
			return next(c)
		}
		userID, err := a.userOf(c.Request().Header)
		if err != nil {
			c.Set(authFailureKey, err)
			return next(c)
		}
		c.SetRequest(c.Request().WithContext(auth.WithUser(c.Request().Context(), userID)))
		return next(c)
	}
}

// userOf reads exactly one Authorization header with a bearer token (the
// scheme in any letter case). Two headers are refused: which one a proxy or
// a library would pick is anyone's guess.
func (a *authenticator) userOf(h http.Header) (int64, error) {
	values := h.Values(echo.HeaderAuthorization)
	switch len(values) {
	case 0:
		return 0, fmt.Errorf("%w: missing bearer token", apperr.ErrUnauthenticated)
	case 1:
	default:
		return 0, fmt.Errorf("%w: more than one Authorization header", apperr.ErrUnauthenticated)
	}
	scheme, token, _ := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return 0, fmt.Errorf("%w: missing bearer token", apperr.ErrUnauthenticated)
	}
	return a.authenticate(token)
}

// refuseUnauthenticated answers 401 for a failure authenticate recorded. It
// runs after the rate limiter, which has charged the failure to the address.
func refuseUnauthenticated(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err, ok := c.Get(authFailureKey).(error); ok {
			return err
		}
		return next(c)
	}
}
