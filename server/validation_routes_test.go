package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/api"
)

// TestContractValidatorTakesEchosRoute: the validator takes the operation
// and the path parameters from the route Echo matched instead of matching
// the path again; for every request, odd paths included, it must find what
// kin-openapi's own router finds (the same operation, the same decoded
// parameters, or the same 404/405), or a request would be validated against
// the wrong operation or with a parameter it never sent.
func TestContractValidatorTakesEchosRoute(t *testing.T) {
	t.Parallel()
	spec, err := api.GetSpec()
	require.NoError(t, err)
	spec.Servers = nil
	library, err := gorillamux.NewRouter(spec)
	require.NoError(t, err)
	routes := contractRoutes(spec)

	type found struct {
		path, method string
		params       map[string]string
		err          error
	}
	decoded := func(route *routers.Route, params map[string]string, err error) found {
		if err != nil {
			return found{err: err}
		}
		out := map[string]string{}
		for k, v := range params {
			// as the validator does with what a router returns
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			out[k] = v
		}
		return found{path: route.Path, method: route.Method, params: out}
	}

	e := echo.New()
	var got found
	for key := range routes {
		e.Add(key.method, key.route, func(c echo.Context) error {
			got = decoded((&echoRoutedRequest{c: c, routes: routes, fallback: library}).FindRoute(c.Request()))
			return c.NoContent(http.StatusNoContent)
		})
	}
	e.RouteNotFound("/*", func(c echo.Context) error {
		got = decoded((&echoRoutedRequest{c: c, routes: routes, fallback: library}).FindRoute(c.Request()))
		return c.NoContent(http.StatusNotFound)
	})

	const id = "0b6f6a3e-4d8b-4a8e-9d1c-6b2f4c1e9a11"
	requests := []struct{ method, target string }{
		{http.MethodPost, "/register/"},
		{http.MethodPost, "/token/"},
		{http.MethodPost, "/revoke/"},
		{http.MethodGet, "/.well-known/jwks.json"},
		{http.MethodPost, "/orders/"},
		{http.MethodGet, "/orders/" + id + "/"},
		{http.MethodPatch, "/orders/" + id + "/"},
		{http.MethodGet, "/orders/user/42/"},
		{http.MethodGet, "/orders/user/42/?limit=5&cursor=abc"},
		{http.MethodGet, "/health"},
		{http.MethodGet, "/ready"},
		// parameters a client had to escape, or escaped for no reason
		{http.MethodGet, "/orders/a%20b/"},
		{http.MethodGet, "/orders/%2541/"},
		{http.MethodGet, "/orders/x%2Fy/"},
		{http.MethodGet, "/orders/%41%42/"},
		{http.MethodGet, "/orders/user/%34%32/"},
		{http.MethodGet, "/orders/%E2%82%AC/"},
		// an empty segment where a parameter goes
		{http.MethodGet, "/orders//"},
		{http.MethodGet, "/orders/user//"},
		// no such path, or not that method
		{http.MethodGet, "/nowhere/"},
		{http.MethodGet, "/orders/" + id + "/extra/"},
		{http.MethodDelete, "/orders/" + id + "/"},
		{http.MethodPut, "/orders/"},
		{http.MethodHead, "/orders/" + id + "/"},
		{http.MethodGet, "/token/"},
	}
	for _, r := range requests {
		t.Run(r.method+" "+r.target, func(t *testing.T) {
			req := httptest.NewRequest(r.method, r.target, nil)
			want := decoded(library.FindRoute(req))
			got = found{}
			e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(r.method, r.target, nil))
			require.Equal(t, want, got)
		})
	}
}
