package config_test

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/config"
)

// env is a getenv over a fixed map, so tests never see the real environment.
func env(vars map[string]string) func(string) string {
	return func(key string) string { return vars[key] }
}

// loadBoth loads the configuration of both processes and joins their
// errors: a variable is validated by every process that reads it.
func loadBoth(getenv func(string) string) error {
	_, apiErr := config.LoadAPI(getenv)
	_, workersErr := config.LoadWorkers(getenv)
	return errors.Join(apiErr, workersErr)
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	a, err := config.LoadAPI(env(nil))
	require.NoError(t, err)
	w, err := config.LoadWorkers(env(nil))
	require.NoError(t, err)

	for _, s := range []config.Shared{a.Shared, w.Shared} {
		require.Equal(t, "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", s.Database.URL)
		require.Equal(t, s.Database.URL, s.Database.MigrationURL, "DATABASE_URL when it is a direct connection")
		require.Equal(t, 16, s.Database.MaxConns)
		require.True(t, s.Database.MigrateOnStart)
		require.Equal(t, slog.LevelInfo, s.LogLevel)
		require.Equal(t, 15*time.Second, s.ShutdownTimeout)
		require.Empty(t, s.DebugAddr)
	}

	require.Equal(t, ":8080", a.HTTPAddr)
	require.Equal(t, "redis://127.0.0.1:6379/0", a.Redis.URL)
	require.Empty(t, a.Tokens.Secret)
	require.Equal(t, 30*time.Minute, a.Tokens.TTL)
	require.Equal(t, "orders-api", a.Tokens.Issuer)
	require.Equal(t, "orders-api", a.Tokens.Audience)
	require.Empty(t, a.Tokens.PreviousSecrets)
	require.Empty(t, a.Tokens.PrivateKeyFile)
	require.Empty(t, a.Tokens.PreviousKeyFiles)
	require.Equal(t, 14*24*time.Hour, a.Tokens.RefreshTTL)
	require.Zero(t, a.Tokens.RefreshReuseGrace, "strict by default")
	require.Empty(t, a.Edge.CORSAllowedOrigins)
	require.Equal(t, 5*time.Minute, a.CacheTTL)
	require.Equal(t, 1, a.PasswordHash.Workers)
	require.Equal(t, time.Second, a.PasswordHash.QueueTimeout)

	require.Equal(t, ":8081", w.HTTPAddr)
	require.Equal(t, "amqp://guest:guest@127.0.0.1:5672/", w.AMQP.URL)
	require.Equal(t, "orders", w.AMQP.Namespace)
	require.Equal(t, 8, w.Outbox.Forwarders)
	require.Equal(t, 100, w.Outbox.BatchSize)
	require.Equal(t, 5*time.Millisecond, w.Outbox.PollInterval)
	require.Equal(t, 3*time.Second, w.Outbox.SafetyPoll)
	require.Equal(t, 24*time.Hour, w.Outbox.Retention)
	require.Equal(t, 2*time.Second, w.Handlers.ProcessOrderDuration)
	require.Equal(t, 128, w.Handlers.ProcessConcurrency)
	require.Equal(t, 128, w.Handlers.StartConcurrency)
	require.Equal(t, 5, w.Handlers.MaxRetries)
	require.Equal(t, 200*time.Millisecond, w.Handlers.RetryBackoff)
	require.Equal(t, 32*time.Second, w.Handlers.Timeout, "PROCESS_ORDER_DURATION + 30s")

	// Without JWT_SECRET the API's configuration loads (`server migrate`
	// needs no key), but the API's check refuses it.
	require.Error(t, a.CheckJWTSecret())
}

func TestLoadEveryVariable(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s", 48)
	vars := map[string]string{
		"DATABASE_URL":                 "postgres://app:pw@db.internal:5433/orders?sslmode=require",
		"MIGRATION_DATABASE_URL":       "postgres://app:pw@db-direct.internal:5432/orders?sslmode=require",
		"DATABASE_MAX_CONNS":           "40",
		"MIGRATE_ON_START":             "false",
		"LOG_LEVEL":                    "debug",
		"SHUTDOWN_TIMEOUT":             "3s",
		"DEBUG_ADDR":                   "127.0.0.1:6060",
		"HTTP_ADDR":                    "127.0.0.1:9000",
		"REDIS_URL":                    "redis://cache:6380/2",
		"JWT_SECRET":                   secret,
		"JWT_TTL":                      "1h30m",
		"JWT_ISSUER":                   "issuer-x",
		"JWT_AUDIENCE":                 "audience-x",
		"JWT_PREVIOUS_SECRETS":         " " + secret + "1 ," + secret + "2",
		"JWT_PRIVATE_KEY_FILE":         "/run/secrets/jwt.pem",
		"JWT_PREVIOUS_KEY_FILES":       "/run/secrets/old1.pem,/run/secrets/old2.pem",
		"REFRESH_TOKEN_TTL":            "720h",
		"REFRESH_REUSE_GRACE":          "10s",
		"CORS_ALLOWED_ORIGINS":         "https://a.example, https://b.example",
		"CACHE_TTL":                    "90s",
		"PASSWORD_HASH_WORKERS":        "6",
		"PASSWORD_HASH_QUEUE_TIMEOUT":  "250ms",
		"WORKERS_HTTP_ADDR":            ":9091",
		"AMQP_URL":                     "amqp://u:p@mq:5673/vhost",
		"AMQP_NAMESPACE":               "orders-test_1.a",
		"OUTBOX_FORWARDERS":            "2",
		"OUTBOX_BATCH_SIZE":            "500",
		"OUTBOX_POLL_INTERVAL":         "50ms",
		"OUTBOX_SAFETY_POLL":           "5s",
		"OUTBOX_RETENTION":             "72h",
		"PROCESS_ORDER_DURATION":       "250ms",
		"PROCESS_CONCURRENCY":          "3",
		"START_PROCESSING_CONCURRENCY": "5",
		"HANDLER_MAX_RETRIES":          "0",
		"HANDLER_RETRY_BACKOFF":        "1s",
		"HANDLER_TIMEOUT":              "10s",
	}
	a, err := config.LoadAPI(env(vars))
	require.NoError(t, err)
	w, err := config.LoadWorkers(env(vars))
	require.NoError(t, err)

	for _, s := range []config.Shared{a.Shared, w.Shared} {
		require.Equal(t, "postgres://app:pw@db.internal:5433/orders?sslmode=require", s.Database.URL)
		require.Equal(t, "postgres://app:pw@db-direct.internal:5432/orders?sslmode=require", s.Database.MigrationURL)
		require.Equal(t, 40, s.Database.MaxConns)
		require.False(t, s.Database.MigrateOnStart)
		require.Equal(t, slog.LevelDebug, s.LogLevel)
		require.Equal(t, 3*time.Second, s.ShutdownTimeout)
		require.Equal(t, "127.0.0.1:6060", s.DebugAddr)
	}

	require.Equal(t, "127.0.0.1:9000", a.HTTPAddr)
	require.Equal(t, "redis://cache:6380/2", a.Redis.URL)
	require.Equal(t, []byte(secret), a.Tokens.Secret)
	require.Equal(t, 90*time.Minute, a.Tokens.TTL)
	require.Equal(t, "issuer-x", a.Tokens.Issuer)
	require.Equal(t, "audience-x", a.Tokens.Audience)
	require.Equal(t, [][]byte{[]byte(secret + "1"), []byte(secret + "2")}, a.Tokens.PreviousSecrets)
	require.Equal(t, "/run/secrets/jwt.pem", a.Tokens.PrivateKeyFile)
	require.Equal(t, []string{"/run/secrets/old1.pem", "/run/secrets/old2.pem"}, a.Tokens.PreviousKeyFiles)
	require.Equal(t, 720*time.Hour, a.Tokens.RefreshTTL)
	require.Equal(t, 10*time.Second, a.Tokens.RefreshReuseGrace)
	require.Equal(t, []string{"https://a.example", "https://b.example"}, a.Edge.CORSAllowedOrigins)
	require.Equal(t, 90*time.Second, a.CacheTTL)
	require.Equal(t, 6, a.PasswordHash.Workers)
	require.Equal(t, 250*time.Millisecond, a.PasswordHash.QueueTimeout)
	require.NoError(t, a.CheckJWTSecret())

	require.Equal(t, ":9091", w.HTTPAddr)
	require.Equal(t, "amqp://u:p@mq:5673/vhost", w.AMQP.URL)
	require.Equal(t, "orders-test_1.a", w.AMQP.Namespace)
	require.Equal(t, 2, w.Outbox.Forwarders)
	require.Equal(t, 500, w.Outbox.BatchSize)
	require.Equal(t, 50*time.Millisecond, w.Outbox.PollInterval)
	require.Equal(t, 5*time.Second, w.Outbox.SafetyPoll)
	require.Equal(t, 72*time.Hour, w.Outbox.Retention)
	require.Equal(t, 250*time.Millisecond, w.Handlers.ProcessOrderDuration)
	require.Equal(t, 3, w.Handlers.ProcessConcurrency)
	require.Equal(t, 5, w.Handlers.StartConcurrency)
	require.Equal(t, 0, w.Handlers.MaxRetries)
	require.Equal(t, time.Second, w.Handlers.RetryBackoff)
	require.Equal(t, 10*time.Second, w.Handlers.Timeout)
}

func TestLoadTrimsValues(t *testing.T) {
	t.Parallel()
	c, err := config.LoadAPI(env(map[string]string{
		"HTTP_ADDR":          "  :9000 ",
		"DATABASE_MAX_CONNS": " 7\n",
		"JWT_TTL":            "\t5m ",
		"MIGRATE_ON_START":   " 0 ",
		"LOG_LEVEL":          " WARN ",
		"LOG_FORMAT":         " JSON ",
		"REDIS_URL":          "   ", // blank means unset: the default applies
	}))
	require.NoError(t, err)
	require.Equal(t, ":9000", c.HTTPAddr)
	require.Equal(t, 7, c.Database.MaxConns)
	require.Equal(t, 5*time.Minute, c.Tokens.TTL)
	require.False(t, c.Database.MigrateOnStart)
	require.Equal(t, slog.LevelWarn, c.LogLevel)
	require.Equal(t, "json", c.LogFormat)
	require.Equal(t, "redis://127.0.0.1:6379/0", c.Redis.URL)
}

func TestLoadInvalidNamesTheVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value string
	}{
		{"DATABASE_URL", "not a url"},
		{"DATABASE_URL", "postgres://user:hunter2@db:notaport/orders"},
		// Behind PgBouncer the statements must be unnamed and one round trip;
		// the text modes cannot encode the queries' uuid arrays.
		{"DATABASE_URL", "postgres://user:hunter2@pgbouncer:6432/orders?default_query_exec_mode=exec"},
		{"DATABASE_URL", "postgres://db/orders?default_query_exec_mode=simple_protocol"},
		{"DATABASE_URL", "postgres://db/orders?default_query_exec_mode=describe_exec"},
		{"DATABASE_URL", "postgres://db/orders?default_query_exec_mode=cache"},
		{"MIGRATION_DATABASE_URL", "db:5432"},
		{"MIGRATION_DATABASE_URL", "postgres://db/orders?default_query_exec_mode=exec"},
		{"REDIS_URL", "localhost:6379"}, // host:port without a scheme
		{"REDIS_URL", "redis:6379"},
		{"AMQP_URL", "rabbitmq:5672"},
		{"AMQP_URL", "://missing-scheme"},
		{"DATABASE_MAX_CONNS", "0"},
		{"DATABASE_MAX_CONNS", "-3"},
		{"DATABASE_MAX_CONNS", "many"},
		{"DATABASE_MAX_CONNS", "1.5"},
		{"PASSWORD_HASH_WORKERS", "0"},
		{"PASSWORD_HASH_QUEUE_TIMEOUT", "0s"},
		{"PASSWORD_HASH_QUEUE_TIMEOUT", "1"},
		{"OUTBOX_FORWARDERS", "none"},
		{"OUTBOX_BATCH_SIZE", "0"},
		{"PROCESS_CONCURRENCY", "-1"},
		{"START_PROCESSING_CONCURRENCY", "0"},
		{"HANDLER_MAX_RETRIES", "-1"},
		{"HANDLER_MAX_RETRIES", "five"},
		{"JWT_TTL", "30"},
		{"JWT_TTL", "-5m"},
		{"JWT_TTL", "forever"},
		{"REFRESH_TOKEN_TTL", "0s"},
		{"REFRESH_TOKEN_TTL", "14d"},
		{"REFRESH_REUSE_GRACE", "-1s"},
		{"CACHE_TTL", "5 minutes"},
		{"PROCESS_ORDER_DURATION", "2"},
		{"SHUTDOWN_TIMEOUT", "-1s"},
		{"OUTBOX_POLL_INTERVAL", "0s"},
		{"OUTBOX_POLL_INTERVAL", "soon"},
		{"OUTBOX_RETENTION", "1 day"},
		{"HANDLER_RETRY_BACKOFF", "x"},
		{"HANDLER_TIMEOUT", "1s"}, // not longer than PROCESS_ORDER_DURATION (2s)
		{"HANDLER_TIMEOUT", "2s"},
		{"HANDLER_TIMEOUT", "later"},
		{"MIGRATE_ON_START", "yes"},
		{"MIGRATE_ON_START", "maybe"},
		{"LOG_LEVEL", "verbose"},
		{"LOG_LEVEL", "trace"},
		{"LOG_FORMAT", "xml"},
		{"LOG_FORMAT", "logfmt"},
		{"AMQP_NAMESPACE", "orders/prod"},
		{"AMQP_NAMESPACE", "with space"},
		{"AMQP_NAMESPACE", "ümlaut"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			err := loadBoth(env(map[string]string{tt.name: tt.value}))
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.name)
			require.NotContains(t, err.Error(), "hunter2", "an error must not leak a password")
		})
	}
}

func TestLoadAcceptsURLs(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, value string }{
		{"DATABASE_URL", "postgres:///orders?host=/var/run/postgresql"},
		{"DATABASE_URL", "postgresql://localhost/orders"},
		{"DATABASE_URL", "postgres://pgbouncer:6432/orders?default_query_exec_mode=cache_describe"},
		{"DATABASE_URL", "postgres://db/orders?default_query_exec_mode=cache_statement"},
		{"MIGRATION_DATABASE_URL", "postgres://db:5432/orders?sslmode=disable"},
		{"REDIS_URL", "rediss://:secret@cache.internal:6380/1"},
		{"REDIS_URL", "unix:///run/redis.sock"},
		{"AMQP_URL", "amqps://user:pw@mq.internal/vhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			t.Parallel()
			err := loadBoth(env(map[string]string{tt.name: tt.value}))
			require.NoError(t, err)
		})
	}
}

func TestLoadReportsEveryInvalidVariable(t *testing.T) {
	t.Parallel()
	err := loadBoth(env(map[string]string{
		"DATABASE_MAX_CONNS": "zero",
		"JWT_TTL":            "soon",
		"LOG_LEVEL":          "loud",
	}))
	require.Error(t, err)
	for _, name := range []string{"DATABASE_MAX_CONNS", "JWT_TTL", "LOG_LEVEL"} {
		require.Contains(t, err.Error(), name)
	}
}

func TestHandlerTimeoutFollowsProcessDuration(t *testing.T) {
	t.Parallel()
	c, err := config.LoadWorkers(env(map[string]string{"PROCESS_ORDER_DURATION": "1m"}))
	require.NoError(t, err)
	require.Equal(t, 90*time.Second, c.Handlers.Timeout)

	_, err = config.LoadWorkers(env(map[string]string{"PROCESS_ORDER_DURATION": "1m", "HANDLER_TIMEOUT": "45s"}))
	require.Error(t, err)
	require.Contains(t, err.Error(), "HANDLER_TIMEOUT")
}

func TestLogLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"DEBUG", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"", slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadAPI(env(map[string]string{"LOG_LEVEL": tt.value}))
			require.NoError(t, err)
			require.Equal(t, tt.want, c.LogLevel)
		})
	}
}

// A private key replaces JWT_SECRET; every secret that verifies must still
// be long enough.
func TestCheckJWTSecretWithKeysAndPreviousSecrets(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", config.MinJWTSecretLen)
	tests := []struct {
		name string
		env  map[string]string
		want string // "" when accepted
	}{
		{"a private key alone", map[string]string{"JWT_PRIVATE_KEY_FILE": "/k.pem"}, ""},
		{"a private key and a secret that verifies", map[string]string{"JWT_PRIVATE_KEY_FILE": "/k.pem", "JWT_SECRET": long}, ""},
		{"a private key and a short secret", map[string]string{"JWT_PRIVATE_KEY_FILE": "/k.pem", "JWT_SECRET": "short"}, "JWT_SECRET"},
		{"previous secrets", map[string]string{"JWT_SECRET": long, "JWT_PREVIOUS_SECRETS": long + "a," + long + "b"}, ""},
		{"a short previous secret", map[string]string{"JWT_SECRET": long, "JWT_PREVIOUS_SECRETS": long + ",hunter2"}, "JWT_PREVIOUS_SECRETS: secret 2 of 2"},
		{"previous secrets without a signing key", map[string]string{"JWT_PREVIOUS_SECRETS": long}, "JWT_SECRET is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadAPI(env(tt.env))
			require.NoError(t, err)
			err = c.CheckJWTSecret()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.NotContains(t, err.Error(), "hunter2", "the error must not print a secret")
		})
	}
}

func TestCheckJWTSecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		ok     bool
	}{
		{"missing", "", false},
		{"one byte", "x", false},
		{"one byte short", strings.Repeat("x", config.MinJWTSecretLen-1), false},
		{"exactly the minimum", strings.Repeat("x", config.MinJWTSecretLen), true},
		{"long", strings.Repeat("x", 128), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadAPI(env(map[string]string{"JWT_SECRET": tt.secret}))
			require.NoError(t, err)
			err = c.CheckJWTSecret()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), "JWT_SECRET")
			require.Contains(t, err.Error(), "32")
			if tt.secret != "" {
				require.NotContains(t, err.Error(), tt.secret, "the error must not print the secret")
			}
		})
	}
}

func TestCORSAllowedOrigins(t *testing.T) {
	t.Parallel()
	tests := []struct {
		value string
		want  []string
	}{
		{"", nil},
		{"   ", nil},
		{",,", nil},
		{"http://localhost:3000", []string{"http://localhost:3000"}},
		{"https://a.example,https://b.example", []string{"https://a.example", "https://b.example"}},
		{" https://a.example , ,https://b.example ,", []string{"https://a.example", "https://b.example"}},
		{"*", []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			c, err := config.LoadAPI(env(map[string]string{"CORS_ALLOWED_ORIGINS": tt.value}))
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Edge.CORSAllowedOrigins)
		})
	}
}

// The .env tests change the working directory and the environment, which
// Go forbids in parallel tests, so they run sequentially.

// unsetenv removes key for the rest of the test and restores it afterwards.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "")
	require.NoError(t, os.Unsetenv(key))
}

func writeDotEnv(t *testing.T, content string) {
	t.Helper()
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, ".env"), []byte(content), 0o600))
}

func TestGetenvDotEnvFallback(t *testing.T) { // not parallel: t.Chdir, t.Setenv
	writeDotEnv(t, strings.Join([]string{
		"# comment",
		"ORDERS_CONFIG_TEST_FILE_ONLY=from-file",
		"ORDERS_CONFIG_TEST_BOTH=from-file",
		`ORDERS_CONFIG_TEST_QUOTED="a value with spaces"`,
		"JWT_ISSUER=issuer-from-dotenv",
		"CORS_ALLOWED_ORIGINS=https://x.example,https://y.example",
		"",
	}, "\n"))
	unsetenv(t, "ORDERS_CONFIG_TEST_FILE_ONLY")
	unsetenv(t, "ORDERS_CONFIG_TEST_QUOTED")
	unsetenv(t, "ORDERS_CONFIG_TEST_MISSING")
	unsetenv(t, "JWT_ISSUER")
	t.Setenv("ORDERS_CONFIG_TEST_BOTH", "from-env")
	t.Setenv("CORS_ALLOWED_ORIGINS", "https://env.example")

	getenv, err := config.Getenv()
	require.NoError(t, err)
	require.Equal(t, "from-file", getenv("ORDERS_CONFIG_TEST_FILE_ONLY"))
	require.Equal(t, "from-env", getenv("ORDERS_CONFIG_TEST_BOTH"), "the process environment wins over .env")
	require.Equal(t, "a value with spaces", getenv("ORDERS_CONFIG_TEST_QUOTED"))
	require.Empty(t, getenv("ORDERS_CONFIG_TEST_MISSING"))

	c, err := config.LoadAPI(getenv)
	require.NoError(t, err)
	require.Equal(t, "issuer-from-dotenv", c.Tokens.Issuer)
	require.Equal(t, []string{"https://env.example"}, c.Edge.CORSAllowedOrigins)

	// .env only feeds the lookup; it does not change the process environment.
	_, set := os.LookupEnv("ORDERS_CONFIG_TEST_FILE_ONLY")
	require.False(t, set)
}

func TestGetenvWithoutDotEnv(t *testing.T) { // not parallel: t.Chdir, t.Setenv
	t.Chdir(t.TempDir())
	t.Setenv("ORDERS_CONFIG_TEST_ENV_ONLY", "from-env")
	unsetenv(t, "ORDERS_CONFIG_TEST_MISSING")

	getenv, err := config.Getenv()
	require.NoError(t, err)
	require.Equal(t, "from-env", getenv("ORDERS_CONFIG_TEST_ENV_ONLY"))
	require.Empty(t, getenv("ORDERS_CONFIG_TEST_MISSING"))
}

func TestGetenvUnreadableDotEnv(t *testing.T) { // not parallel: t.Chdir
	dir := t.TempDir()
	t.Chdir(dir)
	require.NoError(t, os.Mkdir(filepath.Join(dir, ".env"), 0o700)) // exists, but is not a file

	_, err := config.Getenv()
	require.Error(t, err)
	require.Contains(t, err.Error(), ".env")
}

func TestGetenvMalformedDotEnv(t *testing.T) { // not parallel: t.Chdir
	writeDotEnv(t, "GOOD=1\nBROKEN=\"no closing quote\n")

	_, err := config.Getenv()
	require.Error(t, err)
	require.Contains(t, err.Error(), ".env")
}
