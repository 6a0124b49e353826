package main

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"net/url"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	echomw "github.com/oapi-codegen/echo-middleware"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/apperr"
)

// validatorSpec is the contract as the request validator reads it: a copy
// of openapi.yaml without what is checked before the validator runs. The
// security requirements go: the authenticator has met or refused them from
// the headers, on every operation that declares them (securedRoutes), and
// the handlers take the user from the request context or answer 401
// (caller). So do the decimal multipleOf steps (a price's 0.01) that the
// body gate checks on each number as written, exactly and cheaply
// (decimalStep). Everything else is the contract unchanged.
func validatorSpec() (*openapi3.T, error) {
	spec, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	spec.Security = nil
	ops := contractOperations(spec)
	for _, op := range ops {
		op.Security = nil
	}
	for _, rule := range newBodyGate(ops).rules {
		if rule.mediaType == echo.MIMEApplicationJSON {
			dropGatedSteps(rule.schema, map[*openapi3.Schema]bool{})
		}
	}
	return spec, nil
}

// dropGatedSteps removes the steps the gate checks from schema and from the
// schemas the gate reaches under it: object members and array items.
func dropGatedSteps(schema *openapi3.Schema, seen map[*openapi3.Schema]bool) {
	if schema == nil || seen[schema] {
		return
	}
	seen[schema] = true
	switch jsonKindOf(schema) {
	case '0':
		if _, ok := decimalStep(schema); ok {
			schema.MultipleOf = nil
		}
	case '{':
		for _, member := range schema.Properties {
			dropGatedSteps(member.Value, seen)
		}
	case '[':
		if schema.Items != nil {
			dropGatedSteps(schema.Items.Value, seen)
		}
	}
}

// The contract's string formats are checked by our own validators, put in
// kin-openapi's global table once, before anything can validate: given as
// per-validation options instead, they rebuild a map for every value checked,
// and defined any later they would race with validations already running.
func init() {
	openapi3.DefineStringFormatValidator("uuid", openapi3.NewCallbackValidator(validateUUID))
	openapi3.DefineStringFormatValidator("email", openapi3.NewCallbackValidator(validateEmail))
}

// requestValidator validates every request against validatorSpec's
// contract. It takes the operation from the route Echo matched (see
// echoRoutedRequest) rather than matching the path a second time.
func requestValidator(spec *openapi3.T) (echo.MiddlewareFunc, error) {
	spec.Servers = nil // match on path only, whatever Host the request names
	fallback, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, fmt.Errorf("route the contract's paths: %w", err)
	}
	routes := contractRoutes(spec)
	options := &echomw.Options{
		Options: openapi3filter.Options{
			MultiError: true,
		},
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusUnprocessableEntity, Message: "request does not match the contract", Internal: me}
		},
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if isOutsideContract(c.Request().URL.Path) {
				return next(c)
			}
			router := &echoRoutedRequest{c: c, routes: routes, fallback: fallback}
			if err := echomw.ValidateRequestFromContext(c, router, options); err != nil {
				var me openapi3.MultiError
				if errors.As(err.Internal, &me) {
					return classifyValidation(me)
				}
				return err // route not found (404) or method not allowed (405)
			}
			return next(c)
		}
	}, nil
}

// echoRoutedRequest is the validator's router for one request: the route
// Echo matched, looked up in the contract's routes, with the parameters
// Echo extracted. A request Echo matched to none of them (404, 405), or to
// one with an empty parameter (the contract's paths have none), is matched
// by kin-openapi's own router, whose answer names what is wrong.
type echoRoutedRequest struct {
	c        echo.Context
	routes   map[operationKey]*routers.Route
	fallback routers.Router
}

func (r *echoRoutedRequest) FindRoute(req *http.Request) (*routers.Route, map[string]string, error) {
	route, ok := r.routes[operationKey{req.Method, r.c.Path()}]
	if !ok {
		return r.fallback.FindRoute(req)
	}
	names, values := r.c.ParamNames(), r.c.ParamValues()
	params := make(map[string]string, len(names))
	for i, name := range names {
		if values[i] == "" {
			return r.fallback.FindRoute(req)
		}
		// The validator unescapes what a router returns, as kin-openapi's
		// routers match the escaped path; Echo's values are escaped only
		// when the request's path had to be (URL.RawPath set).
		v := values[i]
		if req.URL.RawPath == "" {
			v = url.PathEscape(v)
		}
		params[name] = v
	}
	return route, params, nil
}

// requestInvalid is a contract violation found by the validator.
type requestInvalid struct {
	status int // 400 for unparsable JSON, 413 for an oversized body, else 422
	fields []apperr.FieldError
}

func (e *requestInvalid) Error() string { return "request does not match the contract" }

// classifyValidation turns the validator's findings into one error: an
// oversized or unparsable body, else the list of invalid fields.
func classifyValidation(me openapi3.MultiError) error {
	out := &requestInvalid{status: http.StatusUnprocessableEntity}
	var fields fieldList
	for _, err := range me {
		if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return echo.ErrStatusRequestEntityTooLarge
		}
		var reqErr *openapi3filter.RequestError
		if !errors.As(err, &reqErr) {
			fields.add("request", err.Error())
			continue
		}
		if reqErr.Reason == "failed to decode request body" && isJSON(reqErr.Input.Request) {
			out.status = http.StatusBadRequest
		}
		for _, f := range fieldErrors(reqErr) {
			fields.add(f.Field, f.Message)
		}
	}
	out.fields = fields.list()
	return out
}

func fieldErrors(e *openapi3filter.RequestError) []apperr.FieldError {
	prefix := "body"
	if e.Parameter != nil {
		prefix = e.Parameter.In + "." + e.Parameter.Name
	}
	var schemaErrs []*openapi3.SchemaError
	var nested openapi3.MultiError
	var single *openapi3.SchemaError
	switch {
	case errors.As(e.Err, &nested):
		for _, n := range nested {
			if se := (*openapi3.SchemaError)(nil); errors.As(n, &se) {
				schemaErrs = append(schemaErrs, se)
			}
		}
	case errors.As(e.Err, &single):
		schemaErrs = append(schemaErrs, single)
	}
	if len(schemaErrs) == 0 {
		msg := e.Reason
		if e.Err != nil {
			msg = strings.TrimSpace(strings.TrimPrefix(msg+": "+firstLine(e.Err.Error()), ": "))
		}
		return []apperr.FieldError{{Field: prefix, Message: msg}}
	}
	out := make([]apperr.FieldError, 0, len(schemaErrs))
	for _, se := range schemaErrs {
		out = append(out, apperr.FieldError{Field: prefix + pointerPath(se.JSONPointer()), Message: plainSchemaReason(se)})
	}
	return out
}

// pointerPath renders a JSON pointer as .items[0].price.
func pointerPath(ptr []string) string {
	var b strings.Builder
	for _, p := range ptr {
		if _, err := strconv.Atoi(p); err == nil {
			b.WriteString("[" + p + "]")
		} else {
			b.WriteString("." + p)
		}
	}
	return b.String()
}

func validateUUID(s string) error {
	if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
		return errors.New("must be a UUID such as 0b6f6a3e-4d8b-4a8e-9d1c-6b2f4c1e9a11")
	}
	return nil
}

// validateEmail accepts a bare address (no display name) with a dot-free or
// dotted domain, as net/mail parses it.
func validateEmail(s string) error {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s || addr.Name != "" {
		return errors.New("must be an email address such as alice@example.com")
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func isJSON(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	return err == nil && (mt == echo.MIMEApplicationJSON || strings.HasSuffix(mt, "+json"))
}

// maxReportedErrors bounds the field errors one answer lists; the rest are
// counted in a last entry.
const maxReportedErrors = 20

// fieldList collects field errors, keeping the first maxReportedErrors.
type fieldList struct {
	kept  []apperr.FieldError
	total int
}

func (l *fieldList) add(field, message string) {
	l.total++
	if len(l.kept) < maxReportedErrors {
		l.kept = append(l.kept, apperr.FieldError{Field: field, Message: message})
	}
}

// list returns the kept errors, with "and N more" when some were dropped.
func (l *fieldList) list() []apperr.FieldError {
	if more := l.total - len(l.kept); more > 0 {
		return append(l.kept, apperr.FieldError{Field: "body", Message: fmt.Sprintf("and %d more", more)})
	}
	return l.kept
}
