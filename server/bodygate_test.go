package main

import (
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/api"
)

// contractSchema returns the request body schema of the operation at route.
func contractSchema(t testing.TB, method, route string) *openapi3.Schema {
	t.Helper()
	spec, err := api.GetSpec()
	require.NoError(t, err)
	rule, ok := newBodyGate(contractOperations(spec)).rules[operationKey{method, route}]
	require.True(t, ok, "no body rule for %s %s", method, route)
	return rule.schema
}

func TestCanonicalJSON(t *testing.T) {
	t.Parallel()
	order := contractSchema(t, http.MethodPost, "/orders/")
	register := contractSchema(t, http.MethodPost, "/register/")
	status := contractSchema(t, http.MethodPatch, "/orders/:order_id/")
	tests := []struct {
		name   string
		schema *openapi3.Schema
		body   string
		want   string // the canonical body, when accepted
		status int    // the refusal's status, when refused
		field  string // a field the refusal names
		detail string // part of that field's message
	}{
		{name: "declared members pass unchanged", schema: order,
			body: `{"items":[{"product_id":1,"quantity":2,"price":2.90}]}`,
			want: `{"items":[{"product_id":1,"quantity":2,"price":2.90}]}`},
		{name: "undeclared members are dropped", schema: order,
			body: `{"note":"x","items":[{"extra":[1,{"a":2}],"product_id":1,"quantity":2,"price":3}],"junk":{}}`,
			want: `{"items":[{"product_id":1,"quantity":2,"price":3}]}`},
		{name: "whitespace and escapes are normalised", schema: status,
			body: " {\n\t\"status\" : \"\\u0050AID\" } ", want: `{"status":"PAID"}`},
		{name: "duplicate member", schema: status, body: `{"status":"PAID","status":"CANCELED"}`,
			status: http.StatusUnprocessableEntity, field: "body.status", detail: "more than once"},
		{name: "case variant after the declared member", schema: status, body: `{"status":"PAID","Status":"CANCELED"}`,
			status: http.StatusUnprocessableEntity, field: "body.Status", detail: `did you mean "status"`},
		{name: "case variant alone", schema: register, body: `{"EMAIL":"a@b.io","password":"long-enough-1"}`,
			status: http.StatusUnprocessableEntity, field: "body.EMAIL", detail: `did you mean "email"`},
		{name: "Unicode case folding (long s) as encoding/json folds it", schema: register,
			body:   `{"email":"a@b.io","paſſword":"x","password":"long-enough-1"}`,
			status: http.StatusUnprocessableEntity, field: "body.paſſword", detail: "case-sensitive"},
		{name: "string longer than maxLength", schema: register,
			body:   `{"email":"a@b.io","password":"` + strings.Repeat("p", 129) + `"}`,
			status: http.StatusUnprocessableEntity, field: "body.password", detail: "at most 128 characters"},
		{name: "maxLength counts characters, not bytes or escapes", schema: register,
			body: `{"email":"a@b.io","password":"` + strings.Repeat(`\u00e9`, 128) + `"}`,
			want: `{"email":"a@b.io","password":"` + strings.Repeat("é", 128) + `"}`},
		{name: "more items than maxItems", schema: order,
			body:   `{"items":[` + strings.TrimSuffix(strings.Repeat(`{},`, 101), ",") + `]}`,
			status: http.StatusUnprocessableEntity, field: "body.items", detail: "at most 100 items"},
		{name: "a price with three decimals", schema: order,
			body:   `{"items":[{"product_id":1,"quantity":1,"price":0.125}]}`,
			status: http.StatusUnprocessableEntity, field: "body.items[0].price", detail: "multiple of 0.01"},
		{name: "a price with three decimals through its exponent", schema: order,
			body:   `{"items":[{"product_id":1,"quantity":1,"price":1},{"product_id":1,"quantity":1,"price":125e-3}]}`,
			status: http.StatusUnprocessableEntity, field: "body.items[1].price", detail: "multiple of 0.01"},
		{name: "a price within a float64 of a cent is still too precise", schema: order,
			body:   `{"items":[{"product_id":1,"quantity":1,"price":0.1000000000000000000001}]}`,
			status: http.StatusUnprocessableEntity, field: "body.items[0].price", detail: "multiple of 0.01"},
		{name: "prices with trailing zeros and exponents", schema: order,
			body: `{"items":[{"product_id":1,"quantity":1,"price":2.900},{"product_id":1,"quantity":1,"price":100e-4},{"product_id":1,"quantity":1,"price":1.5E+1}]}`,
			want: `{"items":[{"product_id":1,"quantity":1,"price":2.900},{"product_id":1,"quantity":1,"price":100e-4},{"product_id":1,"quantity":1,"price":1.5E+1}]}`},
		{name: "number literal too long", schema: order,
			body:   `{"items":[{"product_id":1,"quantity":1,"price":1.` + strings.Repeat("0", 50) + `}]}`,
			status: http.StatusUnprocessableEntity, field: "body.items[0].price", detail: "longer than 40"},
		{name: "long string in an ignored member", schema: status,
			body:   `{"status":"PAID","note":"` + strings.Repeat("n", maxStringBytes) + `"}`,
			status: http.StatusUnprocessableEntity, field: "body.note", detail: "longer than 16384 bytes"},
		{name: "long number in an ignored member", schema: status,
			body:   `{"status":"PAID","n":[` + strings.Repeat("9", 41) + `]}`,
			status: http.StatusUnprocessableEntity, field: "body", detail: "longer than 40"},
		{name: "escaped quotes do not end a string early", schema: status,
			body: `{"note":"a\"` + strings.Repeat("9", 60) + `","status":"PAID"}`, want: `{"status":"PAID"}`},
		{name: "wrong JSON type", schema: order, body: `{"items":{"a":1}}`,
			status: http.StatusUnprocessableEntity, field: "body.items", detail: "must be an array, not an object"},
		{name: "wrong top-level type", schema: order, body: `[1,2]`,
			status: http.StatusUnprocessableEntity, field: "body", detail: "must be an object"},
		{name: "too many members", schema: status,
			body:   `{"a":1` + manyMembers(70) + `}`,
			status: http.StatusUnprocessableEntity, field: "body", detail: "more than 64 members"},
		{name: "duplicate inside an ignored member", schema: status, body: `{"x":{"a":1,"a":2},"status":"PAID"}`,
			status: http.StatusUnprocessableEntity, field: "body.x.a", detail: "more than once"},
		{name: "no body at all", schema: status, body: " \n", want: ""},
		{name: "not JSON", schema: status, body: `{"status":`, status: http.StatusBadRequest, field: "body", detail: "not valid JSON"},
		{name: "trailing data", schema: status, body: `{"status":"PAID"} {}`, status: http.StatusBadRequest, field: "body"},
		{name: "invalid UTF-8", schema: status, body: "{\"status\":\"\xff\"}", status: http.StatusBadRequest, field: "body"},
		{name: "nesting deeper than the decoder allows", schema: order,
			body: strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000), status: http.StatusBadRequest, field: "body", detail: "depth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := canonicalJSON(strings.NewReader(tt.body), tt.schema)
			if tt.status == 0 {
				require.NoError(t, err)
				require.Equal(t, tt.want, string(got))
				return
			}
			var invalid *requestInvalid
			require.ErrorAs(t, err, &invalid)
			require.Equal(t, tt.status, invalid.status)
			assertNamesField(t, invalid, tt.field, tt.detail)
		})
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"m` + strings.Repeat("x", i) + `":0`)
	}
	return b.String()
}

func assertNamesField(t *testing.T, invalid *requestInvalid, field, detail string) {
	t.Helper()
	for _, f := range invalid.fields {
		if f.Field == field && strings.Contains(f.Message, detail) {
			return
		}
	}
	t.Errorf("no field error %q containing %q in %+v", field, detail, invalid.fields)
}

func TestCanonicalJSONCapsTheErrorList(t *testing.T) {
	t.Parallel()
	order := contractSchema(t, http.MethodPost, "/orders/")
	body := `{"items":[` + strings.TrimSuffix(strings.Repeat(`{"product_id":"a","quantity":"b","price":"c"},`, 100), ",") + `]}`
	_, err := canonicalJSON(strings.NewReader(body), order)
	var invalid *requestInvalid
	require.ErrorAs(t, err, &invalid)
	require.Len(t, invalid.fields, maxReportedErrors+1)
	require.Equal(t, "and 280 more", invalid.fields[maxReportedErrors].Message)
}

func TestCanonicalJSONOversizedBody(t *testing.T) {
	t.Parallel()
	order := contractSchema(t, http.MethodPost, "/orders/")
	// What Echo's body limit reader does past the limit.
	body := io.MultiReader(strings.NewReader(`{"items":[`), iotest.ErrReader(echo.ErrStatusRequestEntityTooLarge))
	_, err := canonicalJSON(body, order)
	require.ErrorIs(t, err, echo.ErrStatusRequestEntityTooLarge)
}

func TestCanonicalForm(t *testing.T) {
	t.Parallel()
	token := contractSchema(t, http.MethodPost, "/token/")
	tests := []struct {
		name   string
		body   string
		want   string
		field  string
		detail string
	}{
		{name: "declared fields pass, sorted", body: "username=a%40b.io&password=pw&grant_type=password",
			want: "grant_type=password&password=pw&username=a%40b.io"},
		{name: "undeclared fields are dropped", body: "username=a%40b.io&password=pw&x=1", want: "password=pw&username=a%40b.io"},
		{name: "duplicate field", body: "username=a%40b.io&password=pw&password=other", field: "body.password", detail: "more than once"},
		{name: "case variant", body: "username=a%40b.io&password=pw&Password=x", field: "body.Password", detail: `did you mean "password"`},
		{name: "too long", body: "username=a%40b.io&password=" + strings.Repeat("p", 129), field: "body.password", detail: "at most 128"},
		{name: "too many fields", body: "username=u&password=p" + strings.Repeat("&a=1", 40), field: "body", detail: "at most 32"},
		{name: "not a form", body: "username=%zz", field: "body", detail: "not a valid form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := canonicalForm(strings.NewReader(tt.body), token)
			if tt.field == "" {
				require.NoError(t, err)
				require.Equal(t, tt.want, string(got))
				return
			}
			var invalid *requestInvalid
			require.ErrorAs(t, err, &invalid)
			require.Equal(t, http.StatusUnprocessableEntity, invalid.status)
			assertNamesField(t, invalid, tt.field, tt.detail)
		})
	}
}

func TestDecimals(t *testing.T) {
	t.Parallel()
	for literal, want := range map[string]int{
		"0": 0, "-0.000": 0, "0e-9": 0, "12": 0, "1.10": 1, "2.90e-1": 2, "0.125": 3, "-1.001": 3,
		"1.5e1": 0, "1.5E+1": 0, "100e-4": 2, "1e400": 0, "1e-400": 400,
		"1e-9223372036854775808": math.MaxInt, "1e-99999999999999999999": math.MaxInt, "1e99999999999999999999": 0,
	} {
		require.Equal(t, want, decimals([]byte(literal)), literal)
	}
}

// TestValidatorLeavesDecimalStepsToTheGate: the validator's copy of the
// contract drops only the steps the gate checks, and the contract itself,
// which the gate and the served spec read, keeps them.
func TestValidatorLeavesDecimalStepsToTheGate(t *testing.T) {
	t.Parallel()
	checked, err := validatorSpec()
	require.NoError(t, err)
	price := func(spec *openapi3.T) *openapi3.Schema {
		body := spec.Paths.Find("/orders/").Post.RequestBody.Value.Content.Get("application/json").Schema.Value
		return body.Properties["items"].Value.Items.Value.Properties["price"].Value
	}
	require.Nil(t, price(checked).MultipleOf)
	require.NotNil(t, price(checked).Min, "the other keywords stay")
	spec, err := api.GetSpec()
	require.NoError(t, err)
	require.NotNil(t, price(spec).MultipleOf)
	require.InDelta(t, 0.01, *contractSchema(t, http.MethodPost, "/orders/").Properties["items"].Value.Items.Value.Properties["price"].Value.MultipleOf, 0)
}
