// Package config reads the environment once into a typed, validated Config.
// Every failure names the variable, so a misconfigured process stops at start
// with a message an operator can act on.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// Config is the configuration shared by the server and the workers.
type Config struct {
	HTTPAddr             string
	DatabaseURL          string
	DatabaseMaxConns     int
	RedisURL             string
	AMQPURL              string
	JWTSecret            []byte
	JWTTTL               time.Duration
	JWTIssuer            string
	MigrateOnStart       bool
	CORSAllowedOrigins   []string
	CacheTTL             time.Duration
	ProcessOrderDuration time.Duration
	LogLevel             slog.Level
	ShutdownTimeout      time.Duration
	PasswordHashWorkers  int

	// Workers process.
	WorkersHTTPAddr     string
	AMQPNamespace       string
	OutboxForwarders    int
	OutboxBatchSize     int
	OutboxPollInterval  time.Duration
	OutboxRetention     time.Duration
	ProcessConcurrency  int
	HandlerMaxRetries   int
	HandlerRetryBackoff time.Duration
	HandlerTimeout      time.Duration
}

// MinJWTSecretLen is the shortest accepted JWT_SECRET, in bytes (HS256 key size).
const MinJWTSecretLen = 32

// Load reads the configuration through getenv (os.Getenv in production, a map
// in tests) and validates it.
func Load(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{
		HTTPAddr:             r.str("HTTP_ADDR", ":8080"),
		DatabaseURL:          r.url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"),
		DatabaseMaxConns:     r.positiveInt("DATABASE_MAX_CONNS", 16),
		RedisURL:             r.url("REDIS_URL", "redis://127.0.0.1:6379/0"),
		AMQPURL:              r.url("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		JWTSecret:            []byte(getenv("JWT_SECRET")),
		JWTTTL:               r.duration("JWT_TTL", 30*time.Minute),
		JWTIssuer:            r.str("JWT_ISSUER", "orders-api"),
		MigrateOnStart:       r.boolean("MIGRATE_ON_START", true),
		CORSAllowedOrigins:   r.list("CORS_ALLOWED_ORIGINS"),
		CacheTTL:             r.duration("CACHE_TTL", 5*time.Minute),
		ProcessOrderDuration: r.duration("PROCESS_ORDER_DURATION", 2*time.Second),
		LogLevel:             r.level("LOG_LEVEL", slog.LevelInfo),
		ShutdownTimeout:      r.duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		PasswordHashWorkers:  r.positiveInt("PASSWORD_HASH_WORKERS", 2),

		WorkersHTTPAddr:     r.str("WORKERS_HTTP_ADDR", ":8081"),
		AMQPNamespace:       r.name("AMQP_NAMESPACE", "orders"),
		OutboxForwarders:    r.positiveInt("OUTBOX_FORWARDERS", 4),
		OutboxBatchSize:     r.positiveInt("OUTBOX_BATCH_SIZE", 100),
		OutboxPollInterval:  r.duration("OUTBOX_POLL_INTERVAL", 10*time.Millisecond),
		OutboxRetention:     r.duration("OUTBOX_RETENTION", 24*time.Hour),
		ProcessConcurrency:  r.positiveInt("PROCESS_CONCURRENCY", 16),
		HandlerMaxRetries:   r.nonNegativeInt("HANDLER_MAX_RETRIES", 5),
		HandlerRetryBackoff: r.duration("HANDLER_RETRY_BACKOFF", 200*time.Millisecond),
	}
	// A handler must be allowed to finish the simulated work with room to spare.
	c.HandlerTimeout = r.duration("HANDLER_TIMEOUT", c.ProcessOrderDuration+30*time.Second)
	if c.HandlerTimeout <= c.ProcessOrderDuration {
		r.fail("HANDLER_TIMEOUT", "must be longer than PROCESS_ORDER_DURATION (%s)", c.ProcessOrderDuration)
	}
	if c.OutboxPollInterval == 0 {
		r.fail("OUTBOX_POLL_INTERVAL", "must be greater than zero")
	}
	return c, errors.Join(r.errs...)
}

// CheckJWTSecret fails unless JWT_SECRET is set and long enough. Only the API
// signs tokens, so only it calls this; the migrator and the workers do not
// need the secret at all.
func (c Config) CheckJWTSecret() error {
	switch {
	case len(c.JWTSecret) == 0:
		return fmt.Errorf("JWT_SECRET is required (at least %d bytes)", MinJWTSecretLen)
	case len(c.JWTSecret) < MinJWTSecretLen:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes, got %d", MinJWTSecretLen, len(c.JWTSecret))
	}
	return nil
}

// Getenv returns a lookup that prefers the process environment and falls back
// to the variables of a .env file in the working directory, when there is one.
func Getenv() (func(string) string, error) {
	file, err := godotenv.Read(".env")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read .env: %w", err)
	}
	return func(key string) string {
		if v, ok := os.LookupEnv(key); ok {
			return v
		}
		return file[key]
	}, nil
}

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s %s", name, fmt.Sprintf(format, args...)))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) url(name, def string) string {
	v := r.str(name, def)
	if u, err := url.Parse(v); err != nil || u.Scheme == "" {
		r.fail(name, "must be a URL, got %q", redact(v))
	}
	return v
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		r.fail(name, "must be a non-negative duration such as 30s or 5m, got %q", v)
		return def
	}
	return d
}

func (r *reader) positiveInt(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		r.fail(name, "must be a positive integer, got %q", v)
		return def
	}
	return n
}

func (r *reader) nonNegativeInt(name string, def int) int {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		r.fail(name, "must be a non-negative integer, got %q", v)
		return def
	}
	return n
}

// name reads an identifier used in RabbitMQ exchange and queue names.
func (r *reader) name(key, def string) string {
	v := r.str(key, def)
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			r.fail(key, "may hold only letters, digits, '-', '_' and '.', got %q", v)
			return def
		}
	}
	return v
}

func (r *reader) boolean(name string, def bool) bool {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(name, "must be true or false, got %q", v)
		return def
	}
	return b
}

func (r *reader) list(name string) []string {
	var out []string
	for _, part := range strings.Split(r.getenv(name), ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (r *reader) level(name string, def slog.Level) slog.Level {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.fail(name, "must be debug, info, warn or error, got %q", v)
		return def
	}
	return l
}

// redact hides the password of a URL so that it can appear in an error.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable>"
	}
	return u.Redacted()
}
