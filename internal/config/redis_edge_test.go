package config_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
)

func TestRedisAndEdgeDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.LoadAPI(env(nil))
	require.NoError(t, err)
	require.Equal(t, "orders", c.Redis.KeyPrefix)
	require.Equal(t, 50*time.Millisecond, c.Redis.Timeout)
	require.Equal(t, 3, c.Redis.BreakerFailures)
	require.Equal(t, time.Second, c.Redis.BreakerCooldown)
	require.Equal(t, time.Second, c.Redis.BreakerProbe)
	require.False(t, c.Edge.CORSAllowCredentials)
	require.Empty(t, c.Edge.TrustedProxies)
	require.True(t, c.Edge.RateLimit.Enabled)
	require.Equal(t, config.Rate{Limit: 120, Period: time.Minute}, c.Edge.RateLimit.Anonymous)
	require.Equal(t, config.Rate{Limit: 10, Period: time.Minute}, c.Edge.RateLimit.Auth)
	require.Equal(t, config.Rate{Limit: 5, Period: time.Minute}, c.Edge.RateLimit.LoginEmail)
	require.Equal(t, config.Rate{Limit: 600, Period: time.Minute}, c.Edge.RateLimit.User)
}

func TestRedisAndEdgeVariables(t *testing.T) {
	t.Parallel()
	c, err := config.LoadAPI(env(map[string]string{
		"REDIS_KEY_PREFIX":            "shop:eu-1",
		"REDIS_TIMEOUT":               "20ms",
		"REDIS_BREAKER_FAILURES":      "5",
		"REDIS_BREAKER_PROBE_TIMEOUT": "2s",
		"REDIS_BREAKER_COOLDOWN":      "250ms",
		"CACHE_TTL":                   "0s",
		"CORS_ALLOWED_ORIGINS":        "https://app.example.com, http://localhost:3000",
		"CORS_ALLOW_CREDENTIALS":      "true",
		"TRUSTED_PROXIES":             "10.0.0.0/8, 192.0.2.7, ::1",
		"RATE_LIMIT_ENABLED":          "false",
		"RATE_LIMIT_ANONYMOUS":        "30/10s",
		"RATE_LIMIT_AUTH":             " 3 / 1h ",
		"RATE_LIMIT_LOGIN_EMAIL":      "2/15m",
		"RATE_LIMIT_USER":             "1000/1m",
	}))
	require.NoError(t, err)
	require.Equal(t, "shop:eu-1", c.Redis.KeyPrefix)
	require.Equal(t, 20*time.Millisecond, c.Redis.Timeout)
	require.Equal(t, 5, c.Redis.BreakerFailures)
	require.Equal(t, 250*time.Millisecond, c.Redis.BreakerCooldown)
	require.Equal(t, 2*time.Second, c.Redis.BreakerProbe)
	require.Zero(t, c.CacheTTL, "0 turns the cache off")
	require.True(t, c.Edge.CORSAllowCredentials)
	require.Len(t, c.Edge.TrustedProxies, 3)
	require.Equal(t, "10.0.0.0/8", c.Edge.TrustedProxies[0].String())
	require.Equal(t, "192.0.2.7/32", c.Edge.TrustedProxies[1].String())
	require.True(t, c.Edge.TrustedProxies[2].Contains(net.ParseIP("::1")))
	require.False(t, c.Edge.TrustedProxies[2].Contains(net.ParseIP("::2")))
	require.False(t, c.Edge.RateLimit.Enabled)
	require.Equal(t, config.Rate{Limit: 30, Period: 10 * time.Second}, c.Edge.RateLimit.Anonymous)
	require.Equal(t, config.Rate{Limit: 3, Period: time.Hour}, c.Edge.RateLimit.Auth)
	require.Equal(t, config.Rate{Limit: 2, Period: 15 * time.Minute}, c.Edge.RateLimit.LoginEmail)
	require.Equal(t, config.Rate{Limit: 1000, Period: time.Minute}, c.Edge.RateLimit.User)
	require.Equal(t, "1000/1m0s", c.Edge.RateLimit.User.String())
}

func TestRedisAndEdgeInvalidNamesTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env   map[string]string
		names string
	}{
		{map[string]string{"REDIS_KEY_PREFIX": "orders prod"}, "REDIS_KEY_PREFIX"},
		{map[string]string{"REDIS_KEY_PREFIX": "orders*"}, "REDIS_KEY_PREFIX"},
		{map[string]string{"REDIS_TIMEOUT": "0s"}, "REDIS_TIMEOUT"},
		{map[string]string{"REDIS_TIMEOUT": "fast"}, "REDIS_TIMEOUT"},
		{map[string]string{"REDIS_BREAKER_FAILURES": "0"}, "REDIS_BREAKER_FAILURES"},
		{map[string]string{"REDIS_BREAKER_COOLDOWN": "0s"}, "REDIS_BREAKER_COOLDOWN"},
		{map[string]string{"REDIS_BREAKER_PROBE_TIMEOUT": "0s"}, "REDIS_BREAKER_PROBE_TIMEOUT"},
		{map[string]string{"CORS_ALLOW_CREDENTIALS": "sometimes"}, "CORS_ALLOW_CREDENTIALS"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "app.example.com"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com/"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"CORS_ALLOWED_ORIGINS": "ftp://files.example.com"}, "CORS_ALLOWED_ORIGINS"},
		{map[string]string{"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"},
		{map[string]string{"TRUSTED_PROXIES": "proxy.internal"}, "TRUSTED_PROXIES"},
		{map[string]string{"RATE_LIMIT_ENABLED": "on"}, "RATE_LIMIT_ENABLED"},
		{map[string]string{"RATE_LIMIT_ANONYMOUS": "100"}, "RATE_LIMIT_ANONYMOUS"},
		{map[string]string{"RATE_LIMIT_AUTH": "0/1m"}, "RATE_LIMIT_AUTH"},
		{map[string]string{"RATE_LIMIT_LOGIN_EMAIL": "5/0s"}, "RATE_LIMIT_LOGIN_EMAIL"},
		{map[string]string{"RATE_LIMIT_USER": "many/1m"}, "RATE_LIMIT_USER"},
	}
	for _, tt := range tests {
		t.Run(tt.names+"="+tt.env[tt.names], func(t *testing.T) {
			t.Parallel()
			_, err := config.LoadAPI(env(tt.env))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.names)
		})
	}
}
