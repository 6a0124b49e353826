package main

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/stretchr/testify/require"
)

// FuzzCanonicalJSON feeds arbitrary bodies to the body gate of every JSON
// operation. Whatever comes in, the gate answers a 400 or a 422 naming at
// most 21 fields, or passes on a canonical body that is valid JSON without
// duplicate names, no longer than what came in, and that the gate would pass
// on unchanged.
//
//	go test -run XXX -fuzz FuzzCanonicalJSON -fuzztime 30s ./server
func FuzzCanonicalJSON(f *testing.F) {
	for _, seed := range []string{
		`{"items":[{"product_id":1,"quantity":2,"price":2.9}]}`,
		`{"email":"a@b.io","password":"long-enough-1","Password":"x"}`,
		`{"status":"PAID","status":"CANCELED"}`,
		`{"items":[{}],"x":{"a":[1,2,{"b":null}]}}`,
		`{"items":[{"price":1.0000000000000000000000000000000000000000001}]}`,
		`{"email":"\u00e9@b.io","password":"\ud83d\ude00 long enough"}`,
	} {
		f.Add(seed)
	}
	var schemas []*openapi3.Schema
	for _, route := range []string{"/orders/", "/register/"} {
		schemas = append(schemas, contractSchema(f, http.MethodPost, route))
	}
	schemas = append(schemas, contractSchema(f, http.MethodPatch, "/orders/:order_id/"))
	f.Fuzz(func(t *testing.T, body string) {
		for _, schema := range schemas {
			out, err := canonicalJSON(bytes.NewReader([]byte(body)), schema)
			if err != nil {
				var invalid *requestInvalid
				require.ErrorAs(t, err, &invalid, "%v", err)
				require.Contains(t, []int{http.StatusBadRequest, http.StatusUnprocessableEntity}, invalid.status)
				require.NotEmpty(t, invalid.fields)
				require.LessOrEqual(t, len(invalid.fields), maxReportedErrors+1)
				continue
			}
			if out == nil {
				continue // no body at all
			}
			require.True(t, jsontext.Value(out).IsValid(), "canonical body is not valid JSON: %s", out)
			require.LessOrEqual(t, len(out), len(body))
			again, err := canonicalJSON(bytes.NewReader(out), schema)
			require.NoError(t, err)
			require.Equal(t, string(out), string(again))
		}
	})
}
