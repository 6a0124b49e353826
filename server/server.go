package main

import (
	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/orders"
)

// Server implements the generated strict server interface: each method turns
// a request object into one domain call and the result into a typed response.
type Server struct {
	auth   *auth.Service
	orders *orders.Service
	ready  *readiness
	jwks   *api.JWKSet // nil: tokens are signed with a shared secret
}

var _ api.StrictServerInterface = (*Server)(nil)
