package main

import (
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// operationKey names an operation the way Echo routes it: the method and the
// route template (/orders/:order_id/).
type operationKey struct{ method, route string }

// contractOperations indexes the spec's operations by Echo route, so that a
// middleware can look up what the contract says about the request Echo has
// just routed, before anything reads its body.
func contractOperations(spec *openapi3.T) map[operationKey]*openapi3.Operation {
	ops := map[operationKey]*openapi3.Operation{}
	for path, item := range spec.Paths.Map() {
		route := echoRoute(path)
		for method, op := range item.Operations() {
			ops[operationKey{method, route}] = op
		}
	}
	return ops
}

// contractRoutes indexes the spec's operations as kin-openapi routes by Echo
// route, so that the validator takes the operation of the route Echo matched.
func contractRoutes(spec *openapi3.T) map[operationKey]*routers.Route {
	out := map[operationKey]*routers.Route{}
	for path, item := range spec.Paths.Map() {
		route := echoRoute(path)
		for method, op := range item.Operations() {
			out[operationKey{method, route}] = &routers.Route{Spec: spec, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	return out
}

// echoRoute turns an OpenAPI path template into Echo's: {id} becomes :id.
func echoRoute(path string) string {
	segments := strings.Split(path, "/")
	for i, s := range segments {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			segments[i] = ":" + s[1:len(s)-1]
		}
	}
	return strings.Join(segments, "/")
}
