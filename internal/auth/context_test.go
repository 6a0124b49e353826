package auth

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUserInContext(t *testing.T) {
	t.Parallel()
	_, ok := UserFrom(context.Background())
	assert.False(t, ok, "no user without WithUser")

	ctx := WithUser(context.Background(), 42)
	id, ok := UserFrom(ctx)
	assert.True(t, ok)
	assert.Equal(t, int64(42), id)

	type otherKey struct{}
	id, ok = UserFrom(context.WithValue(ctx, otherKey{}, "x"))
	assert.True(t, ok, "survives derived contexts")
	assert.Equal(t, int64(42), id)
}
