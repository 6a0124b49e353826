// Package orders is the module root; it carries openapi.yaml, the HTTP
// contract, so the API can serve the file exactly as written (the spec that
// oapi-codegen embeds in gen/api is its own normalised copy).
package orders

import _ "embed"

// OpenAPIYAML is openapi.yaml, verbatim.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
