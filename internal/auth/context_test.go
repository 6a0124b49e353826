package auth

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUserInContext(t *testing.T) {
	t.Parallel()
	_, ok := UserFrom(context.Background())
	require.False(t, ok, "no user without WithUser")

	ctx := WithUser(context.Background(), 42)
	id, ok := UserFrom(ctx)
	require.True(t, ok)
	require.Equal(t, int64(42), id)

	type otherKey struct{}
	id, ok = UserFrom(context.WithValue(ctx, otherKey{}, "x"))
	require.True(t, ok, "survives derived contexts")
	require.Equal(t, int64(42), id)
}
