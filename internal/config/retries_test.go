package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
)

func TestRetriesAndConcurrentEditsVariables(t *testing.T) {
	t.Parallel()
	c, err := config.LoadAPI(env(nil))
	require.NoError(t, err)
	require.False(t, c.Orders.IdempotencyKeyRequired)
	require.Equal(t, 24*time.Hour, c.Orders.IdempotencyKeyTTL)
	require.False(t, c.Orders.RequireIfMatch)

	c, err = config.LoadAPI(env(map[string]string{
		"IDEMPOTENCY_KEY_REQUIRED": "true",
		"IDEMPOTENCY_KEY_TTL":      "90m",
		"REQUIRE_IF_MATCH":         "1",
	}))
	require.NoError(t, err)
	require.True(t, c.Orders.IdempotencyKeyRequired)
	require.Equal(t, 90*time.Minute, c.Orders.IdempotencyKeyTTL)
	require.True(t, c.Orders.RequireIfMatch)

	for name, value := range map[string]string{
		"IDEMPOTENCY_KEY_REQUIRED": "sometimes",
		"IDEMPOTENCY_KEY_TTL":      "0s",
		"REQUIRE_IF_MATCH":         "yes please",
	} {
		_, err := config.LoadAPI(env(map[string]string{name: value}))
		require.Error(t, err, name)
		require.Contains(t, err.Error(), name)
	}
	_, err = config.LoadAPI(env(map[string]string{"IDEMPOTENCY_KEY_TTL": "a day"}))
	require.ErrorContains(t, err, "IDEMPOTENCY_KEY_TTL")
}
