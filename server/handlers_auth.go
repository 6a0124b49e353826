package main

import (
	"context"
	"encoding/json"
	"fmt"

	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/auth"
)

// Register creates a user.
func (s *Server) Register(ctx context.Context, req api.RegisterRequestObject) (api.RegisterResponseObject, error) {
	u, err := s.auth.Register(ctx, string(req.Body.Email), req.Body.Password)
	if err != nil {
		return nil, err
	}
	return api.Register201JSONResponse{Id: u.ID, Email: openapi_types.Email(u.Email)}, nil
}

// CreateToken is the OAuth2 token endpoint: the password grant (username
// is the email; also when grant_type is absent) and the refresh grant.
func (s *Server) CreateToken(ctx context.Context, req api.CreateTokenRequestObject) (api.CreateTokenResponseObject, error) {
	var (
		grant auth.Grant
		err   error
	)
	if req.Body.GrantType == api.TokenRequestGrantTypeRefreshToken {
		grant, err = s.auth.Refresh(ctx, req.Body.RefreshToken)
	} else {
		grant, err = s.auth.Login(ctx, req.Body.Username, req.Body.Password)
	}
	if err != nil {
		return nil, err
	}
	noStore := "no-store"
	return api.CreateToken200JSONResponse{
		Body: api.Token{
			AccessToken:  grant.AccessToken,
			TokenType:    api.TokenTokenTypeBearer,
			ExpiresIn:    s.auth.TokenTTLSeconds(),
			RefreshToken: grant.RefreshToken,
		},
		Headers: api.CreateToken200ResponseHeaders{CacheControl: &noStore},
	}, nil
}

// RevokeToken is RFC 7009 revocation: 200 whether or not there was
// anything to revoke.
func (s *Server) RevokeToken(ctx context.Context, req api.RevokeTokenRequestObject) (api.RevokeTokenResponseObject, error) {
	if err := s.auth.Revoke(ctx, req.Body.Token); err != nil {
		return nil, err
	}
	return api.RevokeToken200Response{}, nil
}

// jwksCacheControl lets verifiers keep the keys for five minutes; one that
// meets an unknown kid fetches them again.
const jwksCacheControl = "public, max-age=300"

// GetJwks publishes the public keys that verify access tokens; with a
// shared secret there are none.
func (s *Server) GetJwks(_ context.Context, _ api.GetJwksRequestObject) (api.GetJwksResponseObject, error) {
	if s.jwks == nil {
		return nil, fmt.Errorf("JWK set: tokens are signed with a shared secret: %w", apperr.ErrNotFound)
	}
	cacheControl := jwksCacheControl
	return api.GetJwks200JSONResponse{Body: *s.jwks, Headers: api.GetJwks200ResponseHeaders{CacheControl: &cacheControl}}, nil
}

// publicKeySet is the JWK set of keys in the contract's terms, nil when
// there is none to publish.
func publicKeySet(keys *auth.Keys) (*api.JWKSet, error) {
	raw := keys.JWKS()
	if raw == nil {
		return nil, nil
	}
	var set api.JWKSet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("JWK set: %w", err)
	}
	return &set, nil
}
