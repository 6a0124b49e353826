// Package config reads the environment once into a typed, validated Config.
// Every failure names the variable, so a misconfigured process stops at start
// with a message an operator can act on.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"

	"github.com/ordersvc/orders/internal/messaging"
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
	JWTAudience          string
	MigrateOnStart       bool
	CORSAllowedOrigins   []string
	CacheTTL             time.Duration
	ProcessOrderDuration time.Duration
	LogLevel             slog.Level
	ShutdownTimeout      time.Duration
	PasswordHashWorkers  int
	DebugAddr            string

	// Token keys and refresh tokens (the API only; see CheckJWTSecret).
	JWTPreviousSecrets  [][]byte
	JWTPrivateKeyFile   string
	JWTPreviousKeyFiles []string
	RefreshTokenTTL     time.Duration
	RefreshReuseGrace   time.Duration

	// PasswordHashQueueTimeout is the longest a password hash waits for a
	// worker; beyond it the request gets 503.
	PasswordHashQueueTimeout time.Duration

	// Redis: the order cache and the shared rate-limit budgets.
	RedisKeyPrefix       string
	RedisTimeout         time.Duration
	RedisBreakerFailures int
	RedisBreakerProbe    time.Duration
	RedisBreakerCooldown time.Duration

	// Retries and concurrent edits: Idempotency-Key on creates, If-Match on
	// status changes.
	IdempotencyKeyRequired bool
	IdempotencyKeyTTL      time.Duration
	RequireIfMatch         bool

	// HTTP edge: browsers, proxies and abuse.
	CORSAllowCredentials bool
	TrustedProxies       []*net.IPNet
	RateLimitEnabled     bool
	RateLimitAnonymous   Rate
	RateLimitAuth        Rate
	RateLimitLoginEmail  Rate
	RateLimitUser        Rate

	// Workers process.
	WorkersHTTPAddr     string
	AMQPNamespace       string
	AMQPQueueType       string
	OutboxForwarders    int
	OutboxBatchSize     int
	OutboxPollInterval  time.Duration
	OutboxIdlePollMax   time.Duration
	OutboxRetention     time.Duration
	ProcessConcurrency  int
	StartConcurrency    int
	HandlerMaxRetries   int
	HandlerRetryBackoff time.Duration
	HandlerTimeout      time.Duration
}

// Rate is a request budget: Limit requests per Period, all of them usable at
// once (the burst), refilling evenly over Period.
type Rate struct {
	Limit  int
	Period time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%s", r.Limit, r.Period) }

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
		AMQPURL:              r.brokers("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
		JWTSecret:            []byte(getenv("JWT_SECRET")),
		JWTTTL:               r.duration("JWT_TTL", 30*time.Minute),
		JWTIssuer:            r.str("JWT_ISSUER", "orders-api"),
		JWTAudience:          r.str("JWT_AUDIENCE", "orders-api"),
		MigrateOnStart:       r.boolean("MIGRATE_ON_START", true),
		CORSAllowedOrigins:   r.list("CORS_ALLOWED_ORIGINS"),
		CacheTTL:             r.duration("CACHE_TTL", 5*time.Minute),
		ProcessOrderDuration: r.duration("PROCESS_ORDER_DURATION", 2*time.Second),
		LogLevel:             r.level("LOG_LEVEL", slog.LevelInfo),
		ShutdownTimeout:      r.duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		PasswordHashWorkers:  r.positiveInt("PASSWORD_HASH_WORKERS", 1),
		DebugAddr:            r.str("DEBUG_ADDR", ""),

		RedisKeyPrefix:       r.keyPrefix("REDIS_KEY_PREFIX", "orders"),
		RedisTimeout:         r.positiveDuration("REDIS_TIMEOUT", 50*time.Millisecond),
		RedisBreakerFailures: r.positiveInt("REDIS_BREAKER_FAILURES", 3),
		RedisBreakerProbe:    r.positiveDuration("REDIS_BREAKER_PROBE_TIMEOUT", time.Second),
		RedisBreakerCooldown: r.positiveDuration("REDIS_BREAKER_COOLDOWN", time.Second),

		IdempotencyKeyRequired: r.boolean("IDEMPOTENCY_KEY_REQUIRED", false),
		IdempotencyKeyTTL:      r.positiveDuration("IDEMPOTENCY_KEY_TTL", 24*time.Hour),
		RequireIfMatch:         r.boolean("REQUIRE_IF_MATCH", false),

		CORSAllowCredentials: r.boolean("CORS_ALLOW_CREDENTIALS", false),
		TrustedProxies:       r.networks("TRUSTED_PROXIES"),
		RateLimitEnabled:     r.boolean("RATE_LIMIT_ENABLED", true),
		RateLimitAnonymous:   r.rate("RATE_LIMIT_ANONYMOUS", Rate{Limit: 120, Period: time.Minute}),
		RateLimitAuth:        r.rate("RATE_LIMIT_AUTH", Rate{Limit: 10, Period: time.Minute}),
		RateLimitLoginEmail:  r.rate("RATE_LIMIT_LOGIN_EMAIL", Rate{Limit: 5, Period: time.Minute}),
		RateLimitUser:        r.rate("RATE_LIMIT_USER", Rate{Limit: 600, Period: time.Minute}),

		WorkersHTTPAddr:     r.str("WORKERS_HTTP_ADDR", ":8081"),
		AMQPNamespace:       r.name("AMQP_NAMESPACE", "orders"),
		AMQPQueueType:       r.oneOf("AMQP_QUEUE_TYPE", messaging.ClassicQueues, messaging.QuorumQueues),
		OutboxForwarders:    r.positiveInt("OUTBOX_FORWARDERS", 8),
		OutboxBatchSize:     r.positiveInt("OUTBOX_BATCH_SIZE", 100),
		OutboxPollInterval:  r.duration("OUTBOX_POLL_INTERVAL", 20*time.Millisecond),
		OutboxIdlePollMax:   r.duration("OUTBOX_IDLE_POLL_MAX", 160*time.Millisecond),
		OutboxRetention:     r.duration("OUTBOX_RETENTION", 24*time.Hour),
		ProcessConcurrency:  r.positiveInt("PROCESS_CONCURRENCY", 128),
		StartConcurrency:    r.positiveInt("START_PROCESSING_CONCURRENCY", 128),
		HandlerMaxRetries:   r.nonNegativeInt("HANDLER_MAX_RETRIES", 5),
		HandlerRetryBackoff: r.duration("HANDLER_RETRY_BACKOFF", 200*time.Millisecond),
	}
	c.PasswordHashQueueTimeout = r.positiveDuration("PASSWORD_HASH_QUEUE_TIMEOUT", time.Second)
	c.JWTPreviousSecrets = r.secrets("JWT_PREVIOUS_SECRETS")
	c.JWTPrivateKeyFile = r.str("JWT_PRIVATE_KEY_FILE", "")
	c.JWTPreviousKeyFiles = r.list("JWT_PREVIOUS_KEY_FILES")
	c.RefreshTokenTTL = r.positiveDuration("REFRESH_TOKEN_TTL", 14*24*time.Hour)
	c.RefreshReuseGrace = r.duration("REFRESH_REUSE_GRACE", 0)
	// A handler must be allowed to finish the simulated work with room to spare.
	c.HandlerTimeout = r.duration("HANDLER_TIMEOUT", c.ProcessOrderDuration+30*time.Second)
	if c.HandlerTimeout <= c.ProcessOrderDuration {
		r.fail("HANDLER_TIMEOUT", "must be longer than PROCESS_ORDER_DURATION (%s)", c.ProcessOrderDuration)
	}
	if c.OutboxPollInterval == 0 {
		r.fail("OUTBOX_POLL_INTERVAL", "must be greater than zero")
	}
	r.checkOrigins("CORS_ALLOWED_ORIGINS", c.CORSAllowedOrigins, c.CORSAllowCredentials)
	return c, errors.Join(r.errs...)
}

// CheckJWTSecret fails unless the API has a key to sign tokens with:
// JWT_SECRET, long enough, or JWT_PRIVATE_KEY_FILE. Every secret that
// verifies (JWT_SECRET beside a private key, JWT_PREVIOUS_SECRETS) must be
// long enough too. Only the API signs and verifies tokens, so only it calls
// this; the migrator and the workers need no key at all.
func (c Config) CheckJWTSecret() error {
	switch {
	case len(c.JWTSecret) == 0 && c.JWTPrivateKeyFile == "":
		return fmt.Errorf("JWT_SECRET is required (at least %d bytes), unless JWT_PRIVATE_KEY_FILE is set", MinJWTSecretLen)
	case len(c.JWTSecret) > 0 && len(c.JWTSecret) < MinJWTSecretLen:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes, got %d", MinJWTSecretLen, len(c.JWTSecret))
	}
	for i, s := range c.JWTPreviousSecrets {
		if len(s) < MinJWTSecretLen {
			return fmt.Errorf("JWT_PREVIOUS_SECRETS: secret %d of %d must be at least %d bytes, got %d", i+1, len(c.JWTPreviousSecrets), MinJWTSecretLen, len(s))
		}
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
	// "redis:6379" parses as scheme "redis" with opaque "6379": a host:port
	// without "//", which rueidis silently turns into localhost:6379.
	if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Opaque != "" {
		r.fail(name, "must be a URL such as scheme://host:port/..., got %q", redact(v))
	}
	return v
}

// brokers reads AMQP_URL: one broker URL or several, comma-separated (see
// messaging.ParseBrokers).
func (r *reader) brokers(name, def string) string {
	v := r.str(name, def)
	if _, err := messaging.ParseBrokers(v); err != nil {
		r.fail(name, "%v", err)
	}
	return v
}

// oneOf reads a value that must be one of allowed; the first is the default.
func (r *reader) oneOf(name string, allowed ...string) string {
	v := r.str(name, allowed[0])
	if !slices.Contains(allowed, v) {
		r.fail(name, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
		return allowed[0]
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

func (r *reader) positiveDuration(name string, def time.Duration) time.Duration {
	d := r.duration(name, def)
	if d == 0 {
		r.fail(name, "must be greater than zero")
		return def
	}
	return d
}

// rate reads a budget written as LIMIT/PERIOD, for example 10/1m.
func (r *reader) rate(name string, def Rate) Rate {
	v := r.str(name, "")
	if v == "" {
		return def
	}
	limit, period, _ := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(limit))
	d, derr := time.ParseDuration(strings.TrimSpace(period))
	if err != nil || derr != nil || n < 1 || d <= 0 {
		r.fail(name, "must be LIMIT/PERIOD with a positive limit and duration, such as 10/1m, got %q", v)
		return def
	}
	return Rate{Limit: n, Period: d}
}

// networks reads a comma-separated list of CIDR ranges or single addresses.
func (r *reader) networks(name string) []*net.IPNet {
	var out []*net.IPNet
	for _, part := range r.list(name) {
		if ip := net.ParseIP(part); ip != nil {
			bits := 8 * len(ip.To16())
			if v4 := ip.To4(); v4 != nil {
				ip, bits = v4, 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, network, err := net.ParseCIDR(part)
		if err != nil {
			r.fail(name, "must list IP addresses or CIDR ranges such as 10.0.0.0/8, got %q", part)
			continue
		}
		out = append(out, network)
	}
	return out
}

// keyPrefix reads the namespace of Redis keys; ':' separates its parts.
func (r *reader) keyPrefix(name, def string) string {
	v := r.str(name, def)
	valid := func(c rune) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_.:", c)
	}
	for _, c := range v {
		if !valid(c) {
			r.fail(name, "may hold only letters, digits, '-', '_', '.' and ':', got %q", v)
			return def
		}
	}
	return v
}

// checkOrigins accepts "*" or origins (scheme://host[:port], nothing more);
// "*" together with credentials would let any site act as the user.
func (r *reader) checkOrigins(name string, origins []string, credentials bool) {
	for _, o := range origins {
		if o == "*" {
			if credentials {
				r.fail(name, "must not contain * when CORS_ALLOW_CREDENTIALS=true; list the origins")
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			r.fail(name, "must list origins such as https://app.example.com (scheme, host, optional port), got %q", o)
		}
	}
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
		if !isNameRune(c) {
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

// secrets reads a comma-separated list of secrets; spaces around each are
// not part of it.
func (r *reader) secrets(name string) [][]byte {
	var out [][]byte
	for _, s := range r.list(name) {
		out = append(out, []byte(s))
	}
	return out
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

func isNameRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}
