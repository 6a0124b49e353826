package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/oasdiff/yaml"
	"github.com/swaggest/swgui/v5emb"

	orders "github.com/ordersvc/orders"
	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/requestid"
)

// The access log's lines wait at most accessLogFlushEvery, and at most
// accessLogBufferBytes of them (then the request that fills the buffer
// writes it).
const (
	accessLogFlushEvery  = 100 * time.Millisecond
	accessLogBufferBytes = 64 << 10
)

// maxBodyBytes bounds every request body; larger ones get 413. "1MiB" is
// 1,048,576 bytes ("1M" would be 1,000,000).
const maxBodyBytes = "1MiB"

// outsideContract are the paths served beside the contract: no spec
// validation, and no trailing slash added.
var outsideContract = []string{"/docs", "/openapi.json", "/openapi.yaml", "/metrics"}

func isOutsideContract(path string) bool {
	for _, p := range outsideContract {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// isProbe: the probes are in the contract under their slash-less paths.
func isProbe(path string) bool { return path == "/health" || path == "/ready" }

// isWellKnown: RFC 8615 paths name files; they get no trailing slash.
func isWellKnown(path string) bool { return strings.HasPrefix(path, "/.well-known/") }

func isDocsPath(path string) bool {
	return path == "/docs" || strings.HasPrefix(path, "/docs/") || path == "/openapi.json" || path == "/openapi.yaml"
}

// newHTTPHandler builds the Echo instance: contract routes from the
// generated strict handler, spec validation and auth in front of them, and
// the docs beside them.
func newHTTPHandler(srv *Server, edge edgeConfig, observed *httpMetrics, metricsHandler http.Handler, logger, accessLogger *slog.Logger) (http.Handler, error) {
	spec, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	specYAML := orders.OpenAPIYAML
	specJSON, err := yaml.YAMLToJSON(specYAML)
	if err != nil {
		return nil, fmt.Errorf("render openapi.yaml as JSON: %w", err)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(logger)
	e.IPExtractor = clientIP(edge.trustedProxies)

	// Canonical paths end in "/"; accept them without it too.
	e.Pre(middleware.AddTrailingSlashWithConfig(middleware.TrailingSlashConfig{
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return strings.HasSuffix(p, "/") || isOutsideContract(p) || isProbe(p) || isWellKnown(p)
		},
	}))
	// Order matters: the request id first so every later line can carry it;
	// the access log outside Recover so a recovered panic is logged as its 500;
	// the body limit before anything reads the body.
	e.Use(plainRequestID)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{
		// Carried into the request context so that events published while
		// serving the request name it in their metadata.
		RequestIDHandler: func(c echo.Context, id string) {
			c.SetRequest(c.Request().WithContext(requestid.With(c.Request().Context(), id)))
		},
	}))
	// Metrics outside the access log, which writes the problem for an error:
	// both then see the status the client got.
	e.Use(nameSpan)
	e.Use(observed.middleware)
	e.Use(accessLog(accessLogger))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, LogLevel: 0}))
	// Security headers on every answer, errors included; CORS before the
	// validator (it answers preflights, which the contract has no operation
	// for) and before the rate limits (a 429 must reach the page).
	e.Use(securityHeaders)
	e.Use(cors(edge))
	e.Use(middleware.BodyLimit(maxBodyBytes))
	// Authentication is decided from the headers and only recorded; the
	// budgets then bite (a failed authentication on the address's budget)
	// before validation and before any password is hashed; then a recorded
	// failure is the 401.
	authn := newAuthenticator(spec, srv.auth.Authenticate)
	e.Use(authn.record)
	if edge.limits != nil {
		e.Use(edge.limits.middleware)
	}
	e.Use(refuseUnauthenticated)
	// Only now, for a caller the headers admit, is the body read: once,
	// within the contract's bounds, into the canonical copy the validator
	// and the handler both read.
	e.Use(newBodyGate(contractOperations(spec)).middleware)
	checked, err := validatorSpec()
	if err != nil {
		return nil, err
	}
	validator, err := requestValidator(checked)
	if err != nil {
		return nil, err
	}
	e.Use(validator)

	api.RegisterHandlers(e, api.NewStrictHandler(srv, nil))
	if err := authn.checkRoutes(e); err != nil {
		return nil, err
	}

	docs := v5emb.New("Orders API", "/openapi.json", "/docs/")
	e.GET("/docs", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs/") })
	e.GET("/docs/*", answerErrorsAsProblems(docs))
	e.GET("/openapi.json", func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, specJSON) })
	e.GET("/openapi.yaml", func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", specYAML) })
	e.GET("/metrics", echo.WrapHandler(metricsHandler))
	return e, nil
}

// accessLog writes one JSON line per request: never headers or bodies, so
// neither passwords nor tokens reach the log.
func accessLog(logger *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // write the problem now so the status below is the real one
			}
			logger.LogAttrs(c.Request().Context(), levelOf(c.Response().Status), "request",
				slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
				slog.String("method", c.Request().Method),
				slog.String("route", c.Path()),
				slog.Int("status", c.Response().Status),
				slog.Int64("latency_us", time.Since(start).Microseconds()),
				slog.Int64("bytes", c.Response().Size),
			)
			return nil
		}
	}
}
