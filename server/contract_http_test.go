package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

func TestUnknownPathsAndMethodsAnswerProblems(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	cases := []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope/", 404},
		{"GET", "/nope", 404},
		{"GET", "/orders/user/1/items/", 404},
		{"POST", "/health", 405},
		{"GET", "/register/", 405},
		{"GET", "/register", 405},
		{"DELETE", "/orders/", 405},
		{"PUT", "/token/", 405},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := s.do(t, tc.method, tc.path, "", nil, "")
			require.Equal(t, tc.want, r.Status, "%s", r.Body)
			require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
			p := problemOf(t, r.Body)
			require.Equal(t, tc.want, p.Status)
			require.Equal(t, http.StatusText(tc.want), p.Title)
			require.NotEmpty(t, p.Type)
		})
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)

	health, err := s.Client.GetHealthWithResponse(t.Context())
	require.NoError(t, err)
	require.Equal(t, 200, health.StatusCode())
	require.Equal(t, "ok", health.JSON200.Status)

	ready, err := s.Client.GetReadyWithResponse(t.Context())
	require.NoError(t, err)
	require.Equal(t, 200, ready.StatusCode(), "%s", ready.Body)
	require.Equal(t, "ok", ready.JSON200.Status)
	require.Equal(t, map[string]string{"postgres": "ok", "migrations": "ok"}, ready.JSON200.Checks)
}

func TestDocsServeSwaggerUI(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	for _, path := range []string{"/docs/", "/docs"} { // /docs redirects to /docs/
		t.Run(path, func(t *testing.T) {
			r := s.do(t, "GET", path, "", nil, "")
			require.Equal(t, 200, r.Status)
			require.Contains(t, r.Header.Get("Content-Type"), "text/html")
			require.Contains(t, strings.ToLower(string(r.Body)), "swagger")
			require.Contains(t, string(r.Body), "/openapi.json", "the UI loads the served spec")
		})
	}
}

// TestServedSpecIsTheContract: /openapi.json and /openapi.yaml parse, are
// valid, and describe the same operations and statuses as openapi.yaml.
func TestServedSpecIsTheContract(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	want, err := openapi3.NewLoader().LoadFromFile(specPath)
	require.NoError(t, err)

	for _, path := range []string{"/openapi.json", "/openapi.yaml"} {
		t.Run(path, func(t *testing.T) {
			r := s.do(t, "GET", path, "", nil, "")
			require.Equal(t, 200, r.Status)
			served, err := openapi3.NewLoader().LoadFromData(r.Body)
			require.NoError(t, err)
			require.NoError(t, served.Validate(context.Background()))
			require.Equal(t, want.Info.Title, served.Info.Title)
			require.Equal(t, operationSummary(want), operationSummary(served))
		})
	}
	r := s.do(t, "GET", "/openapi.yaml", "", nil, "")
	file, err := os.ReadFile(specPath)
	require.NoError(t, err)
	require.Equal(t, string(file), string(r.Body), "/openapi.yaml is openapi.yaml verbatim")
}

// operationSummary lists "METHOD path operationId statuses" for every operation.
func operationSummary(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			var statuses []string
			for code := range op.Responses.Map() {
				statuses = append(statuses, code)
			}
			sort.Strings(statuses)
			out = append(out, fmt.Sprintf("%s %s %s %v", method, path, op.OperationID, statuses))
		}
	}
	sort.Strings(out)
	return out
}

// TestValidatingTransportCatchesViolations proves the checker is not
// vacuous: a stand-in server answers things the real one must never say, and
// each must fail the call.
func TestValidatingTransportCatchesViolations(t *testing.T) {
	t.Parallel()
	const order = "/orders/0b6f6a3e-4d8b-4a8e-9d1c-6b2f4c1e9a11/"
	answerWith := func(header http.Header, status int, ctype, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			for k, v := range header {
				w.Header()[k] = v
			}
			w.Header().Set("Content-Type", ctype)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	// Orders carry their ETag; the header is harmless on the other answers.
	answer := func(status int, ctype, body string) http.HandlerFunc {
		return answerWith(http.Header{"Etag": {`"1"`}}, status, ctype, body)
	}
	problem := func(status int) string {
		return fmt.Sprintf(`{"type":"about:blank","title":%q,"status":%d}`, http.StatusText(status), status)
	}
	validOrder := `{"id":"0b6f6a3e-4d8b-4a8e-9d1c-6b2f4c1e9a11","user_id":1,"items":[{"product_id":1,"quantity":1,"price":5.8}],` +
		`"total_price":5.8,"status":"PENDING","created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","processed_at":null,"version":1}`
	cases := []struct {
		name, method, path string
		handler            http.HandlerFunc
		wantErr            string // empty: the response is valid
	}{
		{"valid health", "GET", "/health", answer(200, "application/json", `{"status":"ok"}`), ""},
		{"valid order", "GET", order, answer(200, "application/json", validOrder), ""},
		{"order without its ETag", "GET", order, answerWith(nil, 200, "application/json", validOrder), `"ETag" missing`},
		{"valid problem", "GET", order, answer(404, "application/problem+json", problem(404)), ""},
		{"undocumented status", "GET", "/health", answer(418, "application/problem+json", problem(418)), "not documented"},
		{"undocumented 500 on health", "GET", "/health", answer(500, "application/problem+json", problem(500)), "not documented"},
		{"body missing a required field", "GET", "/health", answer(200, "application/json", `{"state":"ok"}`), "status"},
		{"money as a string", "GET", order, answer(200, "application/json", strings.Replace(validOrder, `"total_price":5.8`, `"total_price":"5.8"`, 1)), "total_price"},
		{"bad uuid in body", "GET", order, answer(200, "application/json", strings.Replace(validOrder, `"id":"0b6f`, `"id":"zz6f`, 1)), "uuid"},
		{"unknown token type", "POST", "/token/", answer(200, "application/json", `{"access_token":"x","token_type":"mac","expires_in":1}`), "token_type"},
		{"error as plain JSON", "GET", order, answer(404, "application/json", problem(404)), "problem+json"},
		{"problem status differs", "GET", order, answer(404, "application/problem+json", problem(400)), "problem title"},
		{"problem without type", "GET", order, answer(403, "application/problem+json", `{"title":"Forbidden","status":403}`), "no type"},
		{"unknown path as text", "GET", "/nope", answer(404, "text/plain", "not found"), "problem+json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stand := httptest.NewServer(tc.handler)
			t.Cleanup(stand.Close)
			s := newContractServer(t, stand.URL, "", newObserved())
			req, err := http.NewRequestWithContext(t.Context(), tc.method, stand.URL+tc.path, nil)
			require.NoError(t, err)
			resp, err := s.HTTP.Do(req)
			if tc.wantErr == "" {
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}
