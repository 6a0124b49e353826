package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
)

// specPath is the contract itself, not the copy embedded in gen/api: a
// stale generated copy must not make the tests agree with it.
const specPath = "../openapi.yaml"

// contractDoc is openapi.yaml with a router to find the operation a request
// addressed.
type contractDoc struct {
	router routers.Router
	// documented lists, per operationId, every status the spec declares.
	documented map[string]map[int]bool
	options    *openapi3filter.Options
}

// loadContract parses the spec once per test binary; the router and the spec
// are read-only afterwards, so every test shares them.
var loadContract = sync.OnceValues(func() (*contractDoc, error) {
	spec, err := openapi3.NewLoader().LoadFromFile(specPath)
	if err != nil {
		return nil, err
	}
	if err := spec.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", specPath, err)
	}
	spec.Servers = nil // match on path only, as the server does
	router, err := gorillamux.NewRouter(spec)
	if err != nil {
		return nil, err
	}
	doc := &contractDoc{
		router:     router,
		documented: map[string]map[int]bool{},
		options: &openapi3filter.Options{
			IncludeResponseStatus: true, // an undocumented status is a failure, not a pass
			MultiError:            true,
			// The same format checks as the server, passed per validation
			// rather than through kin-openapi's global format registry.
			SchemaValidationOptions: []openapi3.SchemaValidationOption{
				openapi3.WithStringFormatValidator("uuid", openapi3.NewCallbackValidator(validateUUID)),
				openapi3.WithStringFormatValidator("email", openapi3.NewCallbackValidator(validateEmail)),
			},
		},
	}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			statuses := map[int]bool{}
			for code := range op.Responses.Map() {
				var n int
				if _, err := fmt.Sscanf(code, "%d", &n); err != nil {
					return nil, fmt.Errorf("operation %s: response %q is not a status code", op.OperationID, code)
				}
				statuses[n] = true
			}
			doc.documented[op.OperationID] = statuses
		}
	}
	return doc, nil
})

func contract(t *testing.T) *contractDoc {
	t.Helper()
	doc, err := loadContract()
	require.NoError(t, err, "load openapi.yaml")
	return doc
}

// opStatus is one response of one operation.
type opStatus struct {
	op     string
	status int
}

func (k opStatus) String() string { return fmt.Sprintf("%s %d", k.op, k.status) }

// observed records every (operationId, status) the validating transport let through.
type observed struct {
	mu   sync.Mutex
	seen map[opStatus]bool
}

func newObserved() *observed { return &observed{seen: map[opStatus]bool{}} }

func (o *observed) add(k opStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen[k] = true
}

// missing returns the documented pairs not observed, sorted.
func (o *observed) missing(doc *contractDoc) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for op, statuses := range doc.documented {
		for status := range statuses {
			if k := (opStatus{op, status}); !o.seen[k] {
				out = append(out, k.String())
			}
		}
	}
	sort.Strings(out)
	return out
}

// validatingTransport checks every response against openapi.yaml before the
// caller sees it, and fails the call (an error from RoundTrip, so the test
// that made the request fails) when:
//   - the status is not documented for the operation;
//   - status, headers or body do not match the spec (openapi3filter.ValidateResponse);
//   - a non-2xx answer, in or outside the contract, is not an RFC 9457
//     application/problem+json body whose status is the HTTP status.
type validatingTransport struct {
	doc  *contractDoc
	next http.RoundTripper
	seen *observed
}

func (v *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read response body: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.check(req, resp, body); err != nil {
		return nil, fmt.Errorf("contract violation: %s %s answered %d: %w\nheaders: %v\nbody: %s",
			req.Method, req.URL.RequestURI(), resp.StatusCode, err, resp.Header, clip(body))
	}
	return resp, nil
}

func (v *validatingTransport) check(req *http.Request, resp *http.Response, body []byte) error {
	isRedirect := resp.StatusCode >= 300 && resp.StatusCode < 400
	if resp.StatusCode >= 300 && !isRedirect {
		if err := checkProblem(resp, body); err != nil {
			return err
		}
	}
	route, params, ok := v.findRoute(req)
	if !ok {
		return nil // outside the contract: unknown path, wrong method, docs
	}
	op := route.Operation.OperationID
	if !v.doc.documented[op][resp.StatusCode] {
		return fmt.Errorf("status %d is not documented for %s", resp.StatusCode, op)
	}
	v.seen.add(opStatus{op, resp.StatusCode})
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route, Options: v.doc.options,
		},
		Status:  resp.StatusCode,
		Header:  resp.Header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: v.doc.options,
	})
}

// findRoute finds the operation; a path without its canonical trailing
// slash addresses the same operation, as the server accepts it.
func (v *validatingTransport) findRoute(req *http.Request) (*routers.Route, map[string]string, bool) {
	route, params, err := v.doc.router.FindRoute(req)
	if errors.Is(err, routers.ErrPathNotFound) && !strings.HasSuffix(req.URL.Path, "/") {
		slashed := req.Clone(req.Context())
		slashed.URL.Path += "/"
		if slashed.URL.RawPath != "" {
			slashed.URL.RawPath += "/"
		}
		route, params, err = v.doc.router.FindRoute(slashed)
	}
	return route, params, err == nil
}

// checkProblem asserts an RFC 9457 body: problem+json, with type, title and
// a status equal to the HTTP status.
func checkProblem(resp *http.Response, body []byte) error {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "application/problem+json" {
		return fmt.Errorf("error content type is %q, want application/problem+json", resp.Header.Get("Content-Type"))
	}
	var p struct {
		Type   *string `json:"type"`
		Title  *string `json:"title"`
		Status *int    `json:"status"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("problem body is not JSON: %w", err)
	}
	switch {
	case p.Type == nil || *p.Type == "":
		return errors.New("problem has no type")
	case p.Title == nil || *p.Title != http.StatusText(resp.StatusCode):
		return fmt.Errorf("problem title is %v, want %q", p.Title, http.StatusText(resp.StatusCode))
	case p.Status == nil || *p.Status != resp.StatusCode:
		return fmt.Errorf("problem status is %v, want %d", p.Status, resp.StatusCode)
	}
	return nil
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// contractServer is the real server (started through run by startServer)
// reached only through the validating transport: Client for typed calls, HTTP
// for the raw requests the typed client cannot express.
type contractServer struct {
	URL    string
	DBURL  string
	Client *client.ClientWithResponses
	HTTP   *http.Client
}

// startContractServer starts the API with env and records the operations and
// statuses it answers in seen (a fresh recorder when nil).
func startContractServer(t *testing.T, env map[string]string, seen *observed) *contractServer {
	t.Helper()
	if seen == nil {
		seen = newObserved()
	}
	ts := startServer(t, env)
	return newContractServer(t, ts.URL, ts.DBURL, seen)
}

func newContractServer(t *testing.T, baseURL, dbURL string, seen *observed) *contractServer {
	t.Helper()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(transport.CloseIdleConnections)
	httpClient := &http.Client{Transport: &validatingTransport{doc: contract(t), next: transport, seen: seen}}
	c, err := client.NewClientWithResponses(baseURL, client.WithHTTPClient(httpClient))
	require.NoError(t, err)
	return &contractServer{URL: baseURL, DBURL: dbURL, Client: c, HTTP: httpClient}
}

// rawResponse is the answer to a request the typed client cannot express.
type rawResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// do sends a raw request through the validating transport. token is sent as
// a bearer token when not empty.
func (s *contractServer) do(t *testing.T, method, path, contentType string, body io.Reader, token string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, s.URL+path, body)
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return s.send(t, req)
}

// send sends req through the validating transport and reads the answer.
func (s *contractServer) send(t *testing.T, req *http.Request) rawResponse {
	t.Helper()
	resp, err := s.HTTP.Do(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// problemOf decodes a problem+json body.
func problemOf(t *testing.T, body []byte) client.Problem {
	t.Helper()
	var p client.Problem
	require.NoError(t, json.Unmarshal(body, &p), "problem body: %s", body)
	return p
}

// fieldsOf lists the field names of a 422 problem's errors.
func fieldsOf(p *client.Problem) []string {
	if p == nil || p.Errors == nil {
		return nil
	}
	out := make([]string, 0, len(*p.Errors))
	for _, e := range *p.Errors {
		out = append(out, e.Field)
	}
	return out
}
