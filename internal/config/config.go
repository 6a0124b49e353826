// Package config reads the environment once into a typed, validated
// configuration per process: LoadAPI for the server, LoadWorkers for the
// workers, each reading only the variables its process uses (Vars, in
// vars.go, lists them all with their defaults and meanings). Every failure
// names the variable, so a misconfigured process stops at start with a
// message an operator can act on.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/joho/godotenv"
)

// Shared is what both processes read.
type Shared struct {
	Database        Database
	LogLevel        slog.Level
	LogFormat       string // "json", "text", or "" for text on a terminal and JSON otherwise
	ShutdownTimeout time.Duration
	DebugAddr       string
}

// Database is the PostgreSQL connection of a process.
type Database struct {
	URL string
	// MigrationURL is a direct connection to the same database, for
	// everything that needs a session of its own: migrations (under a
	// session advisory lock), LISTEN, the migration check of /ready. It is
	// URL unless DATABASE_URL goes through a transaction pooler.
	MigrationURL   string
	MaxConns       int
	MigrateOnStart bool
}

// API is the configuration of the HTTP process (server).
type API struct {
	Shared

	HTTPAddr     string
	Tokens       Tokens
	Redis        Redis
	CacheTTL     time.Duration
	Orders       Orders
	Edge         Edge
	PasswordHash PasswordHash
}

// Tokens are the keys and lifetimes of access and refresh tokens; see
// CheckJWTSecret.
type Tokens struct {
	Secret            []byte
	PreviousSecrets   [][]byte
	PrivateKeyFile    string
	PreviousKeyFiles  []string
	TTL               time.Duration
	Issuer            string
	Audience          string
	RefreshTTL        time.Duration
	RefreshReuseGrace time.Duration
}

// Redis holds the order cache and the shared rate-limit budgets, behind a
// circuit breaker.
type Redis struct {
	URL             string
	KeyPrefix       string
	Timeout         time.Duration
	BreakerFailures int
	BreakerProbe    time.Duration
	BreakerCooldown time.Duration
}

// Orders are the rules for retries and concurrent edits: Idempotency-Key on
// creates, If-Match on status changes.
type Orders struct {
	IdempotencyKeyRequired bool
	IdempotencyKeyTTL      time.Duration
	RequireIfMatch         bool
}

// Edge is the HTTP edge: browsers, proxies and abuse.
type Edge struct {
	CORSAllowedOrigins   []string
	CORSAllowCredentials bool
	TrustedProxies       []*net.IPNet
	RateLimit            RateLimits
}

// RateLimits are the request budgets; see README's Limits.
type RateLimits struct {
	Enabled    bool
	Anonymous  Rate
	Auth       Rate
	LoginEmail Rate
	User       Rate
}

// PasswordHash bounds the argon2id work: hashes at once, and the longest a
// hash waits for a worker before the request gets 503.
type PasswordHash struct {
	Workers      int
	QueueTimeout time.Duration
}

// Workers is the configuration of the Watermill process (workers).
type Workers struct {
	Shared

	HTTPAddr string
	AMQP     AMQP
	Outbox   Outbox
	Handlers Handlers
}

// AMQP is the RabbitMQ connection and the prefix of every exchange and queue.
type AMQP struct {
	URL       string // one broker, or several comma-separated, tried in turn
	Namespace string
	QueueType string // messaging.ClassicQueues or messaging.QuorumQueues
}

// Outbox paces the forwarders that move outbox rows to RabbitMQ.
type Outbox struct {
	Forwarders   int
	BatchSize    int
	PollInterval time.Duration
	SafetyPoll   time.Duration
	Retention    time.Duration
}

// Handlers bound the message handlers: how many run at once, how they
// retry, and how long one attempt may take.
type Handlers struct {
	ProcessOrderDuration time.Duration
	ProcessConcurrency   int
	StartConcurrency     int
	MaxRetries           int
	RetryBackoff         time.Duration
	Timeout              time.Duration
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

// LoadAPI reads the API's configuration through getenv (os.Getenv in
// production, a map in tests) and validates it. It reads no variable of the
// workers alone.
func LoadAPI(getenv func(string) string) (API, error) {
	r := &reader{getenv: getenv}
	c := API{
		Shared:   loadShared(r),
		HTTPAddr: get(r, "HTTP_ADDR", parseString),
		Tokens: Tokens{
			Secret:            r.secret("JWT_SECRET"),
			PreviousSecrets:   get(r, "JWT_PREVIOUS_SECRETS", parseSecrets),
			PrivateKeyFile:    get(r, "JWT_PRIVATE_KEY_FILE", parseString),
			PreviousKeyFiles:  get(r, "JWT_PREVIOUS_KEY_FILES", parseList),
			TTL:               get(r, "JWT_TTL", parseDuration),
			Issuer:            get(r, "JWT_ISSUER", parseString),
			Audience:          get(r, "JWT_AUDIENCE", parseString),
			RefreshTTL:        get(r, "REFRESH_TOKEN_TTL", parsePositiveDuration),
			RefreshReuseGrace: get(r, "REFRESH_REUSE_GRACE", parseDuration),
		},
		Redis: Redis{
			URL:             get(r, "REDIS_URL", parseURL),
			KeyPrefix:       get(r, "REDIS_KEY_PREFIX", parseKeyPrefix),
			Timeout:         get(r, "REDIS_TIMEOUT", parsePositiveDuration),
			BreakerFailures: get(r, "REDIS_BREAKER_FAILURES", parsePositiveInt),
			BreakerProbe:    get(r, "REDIS_BREAKER_PROBE_TIMEOUT", parsePositiveDuration),
			BreakerCooldown: get(r, "REDIS_BREAKER_COOLDOWN", parsePositiveDuration),
		},
		CacheTTL: get(r, "CACHE_TTL", parseDuration),
		Orders: Orders{
			IdempotencyKeyRequired: get(r, "IDEMPOTENCY_KEY_REQUIRED", parseBool),
			IdempotencyKeyTTL:      get(r, "IDEMPOTENCY_KEY_TTL", parsePositiveDuration),
			RequireIfMatch:         get(r, "REQUIRE_IF_MATCH", parseBool),
		},
		Edge: Edge{
			CORSAllowedOrigins:   get(r, "CORS_ALLOWED_ORIGINS", parseList),
			CORSAllowCredentials: get(r, "CORS_ALLOW_CREDENTIALS", parseBool),
			TrustedProxies:       get(r, "TRUSTED_PROXIES", parseNetworks),
			RateLimit: RateLimits{
				Enabled:    get(r, "RATE_LIMIT_ENABLED", parseBool),
				Anonymous:  get(r, "RATE_LIMIT_ANONYMOUS", parseRate),
				Auth:       get(r, "RATE_LIMIT_AUTH", parseRate),
				LoginEmail: get(r, "RATE_LIMIT_LOGIN_EMAIL", parseRate),
				User:       get(r, "RATE_LIMIT_USER", parseRate),
			},
		},
		PasswordHash: PasswordHash{
			Workers:      get(r, "PASSWORD_HASH_WORKERS", parsePositiveInt),
			QueueTimeout: get(r, "PASSWORD_HASH_QUEUE_TIMEOUT", parsePositiveDuration),
		},
	}
	r.checkOrigins("CORS_ALLOWED_ORIGINS", c.Edge.CORSAllowedOrigins, c.Edge.CORSAllowCredentials)
	return c, errors.Join(r.errs...)
}

// LoadWorkers reads the workers' configuration through getenv and validates
// it. It reads no variable of the API alone.
func LoadWorkers(getenv func(string) string) (Workers, error) {
	r := &reader{getenv: getenv}
	c := Workers{
		Shared:   loadShared(r),
		HTTPAddr: get(r, "WORKERS_HTTP_ADDR", parseString),
		AMQP: AMQP{
			URL:       get(r, "AMQP_URL", parseBrokers),
			Namespace: get(r, "AMQP_NAMESPACE", parseName),
			QueueType: get(r, "AMQP_QUEUE_TYPE", parseQueueType),
		},
		Outbox: Outbox{
			Forwarders:   get(r, "OUTBOX_FORWARDERS", parsePositiveInt),
			BatchSize:    get(r, "OUTBOX_BATCH_SIZE", parsePositiveInt),
			PollInterval: get(r, "OUTBOX_POLL_INTERVAL", parsePositiveDuration),
			SafetyPoll:   get(r, "OUTBOX_SAFETY_POLL", parseDuration),
			Retention:    get(r, "OUTBOX_RETENTION", parseDuration),
		},
		Handlers: Handlers{
			ProcessOrderDuration: get(r, "PROCESS_ORDER_DURATION", parseDuration),
			ProcessConcurrency:   get(r, "PROCESS_CONCURRENCY", parsePositiveInt),
			StartConcurrency:     get(r, "START_PROCESSING_CONCURRENCY", parsePositiveInt),
			MaxRetries:           get(r, "HANDLER_MAX_RETRIES", parseNonNegativeInt),
			RetryBackoff:         get(r, "HANDLER_RETRY_BACKOFF", parseDuration),
		},
	}
	if c.Outbox.SafetyPoll < time.Second {
		r.fail("OUTBOX_SAFETY_POLL", errors.New("must be at least 1s (it is a safety net; notifications wake the forwarders)"))
	}
	h := &c.Handlers
	// A handler must be allowed to finish the simulated work with room to spare.
	h.Timeout = getOr(r, "HANDLER_TIMEOUT", parseDuration, h.ProcessOrderDuration+30*time.Second)
	if h.Timeout <= h.ProcessOrderDuration {
		r.fail("HANDLER_TIMEOUT", fmt.Errorf("must be longer than PROCESS_ORDER_DURATION (%s)", h.ProcessOrderDuration))
	}
	return c, errors.Join(r.errs...)
}

func loadShared(r *reader) Shared {
	db := Database{
		URL:            get(r, "DATABASE_URL", parseDatabaseURL),
		MigrationURL:   get(r, "MIGRATION_DATABASE_URL", parseDatabaseURL),
		MaxConns:       get(r, "DATABASE_MAX_CONNS", parsePositiveInt),
		MigrateOnStart: get(r, "MIGRATE_ON_START", parseBool),
	}
	if db.MigrationURL == "" {
		db.MigrationURL = db.URL
	}
	return Shared{
		Database:        db,
		LogLevel:        get(r, "LOG_LEVEL", parseLevel),
		LogFormat:       get(r, "LOG_FORMAT", parseLogFormat),
		ShutdownTimeout: get(r, "SHUTDOWN_TIMEOUT", parseDuration),
		DebugAddr:       get(r, "DEBUG_ADDR", parseString),
	}
}

// CheckJWTSecret fails unless the API has a key to sign tokens with:
// JWT_SECRET, long enough, or JWT_PRIVATE_KEY_FILE. Every secret that
// verifies (JWT_SECRET beside a private key, JWT_PREVIOUS_SECRETS) must be
// long enough too. The server checks it after `server migrate` has had its
// chance: the migration job needs no key.
func (c API) CheckJWTSecret() error {
	t := c.Tokens
	switch {
	case len(t.Secret) == 0 && t.PrivateKeyFile == "":
		return fmt.Errorf("JWT_SECRET is required (at least %d bytes), unless JWT_PRIVATE_KEY_FILE is set", MinJWTSecretLen)
	case len(t.Secret) > 0 && len(t.Secret) < MinJWTSecretLen:
		return fmt.Errorf("JWT_SECRET must be at least %d bytes, got %d", MinJWTSecretLen, len(t.Secret))
	}
	for i, s := range t.PreviousSecrets {
		if len(s) < MinJWTSecretLen {
			return fmt.Errorf("JWT_PREVIOUS_SECRETS: secret %d of %d must be at least %d bytes, got %d", i+1, len(t.PreviousSecrets), MinJWTSecretLen, len(s))
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
