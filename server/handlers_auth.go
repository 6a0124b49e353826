package main

import (
	"context"

	openapi_types "github.com/oapi-codegen/runtime/types"
	"github.com/ordersvc/orders/gen/api"
)

// Register creates a user.
func (s *Server) Register(ctx context.Context, req api.RegisterRequestObject) (api.RegisterResponseObject, error) {
	u, err := s.auth.Register(ctx, string(req.Body.Email), req.Body.Password)
	if err != nil {
		return nil, err
	}
	return api.Register201JSONResponse{Id: u.ID, Email: openapi_types.Email(u.Email)}, nil
}

// CreateToken is the OAuth2 password flow: username is the email.
func (s *Server) CreateToken(ctx context.Context, req api.CreateTokenRequestObject) (api.CreateTokenResponseObject, error) {
	token, err := s.auth.Login(ctx, req.Body.Username, req.Body.Password)
	if err != nil {
		return nil, err
	}
	noStore := "no-store"
	return api.CreateToken200JSONResponse{
		Body: api.Token{
			AccessToken: token,
			TokenType:   api.TokenTokenTypeBearer,
			ExpiresIn:   s.auth.TokenTTLSeconds(),
		},
		Headers: api.CreateToken200ResponseHeaders{CacheControl: &noStore},
	}, nil
}
