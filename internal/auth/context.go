package auth

import "context"

type userKey struct{}

// WithUser returns a context carrying the authenticated user's id.
func WithUser(ctx context.Context, userID int64) context.Context {
	return context.WithValue(ctx, userKey{}, userID)
}

// UserFrom returns the authenticated user's id, if the request had one.
func UserFrom(ctx context.Context) (int64, bool) {
	id, ok := ctx.Value(userKey{}).(int64)
	return id, ok
}
