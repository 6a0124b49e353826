package config

// Process says which processes read a variable.
type Process uint8

// The processes: the API (server) and the workers.
const (
	ProcessAPI Process = 1 << iota
	ProcessWorkers
	ProcessBoth = ProcessAPI | ProcessWorkers
)

// Includes reports whether the process p is one of q.
func (q Process) Includes(p Process) bool { return q&p != 0 }

func (q Process) String() string {
	switch q {
	case ProcessAPI:
		return "api"
	case ProcessWorkers:
		return "workers"
	case ProcessBoth:
		return "both"
	}
	return "none"
}

// Var is one environment variable: the loaders take its default from here,
// and README.md's configuration table and .env.example are generated from
// it (go run ./internal/config/cmd/configdoc, part of task generate).
type Var struct {
	Name    string
	Process Process
	// Default is the value used when the variable is unset or blank,
	// written as an operator would write it; "" when there is none or it is
	// computed (DefaultNote says how).
	Default string
	// DefaultNote follows the default in README's table, or stands for it
	// when Default is "" (markdown).
	DefaultNote string
	// Example is the value .env.example gives, when it differs from Default.
	Example string
	// Unset: .env.example leaves it commented out, because setting it would
	// turn something on or pin a computed default.
	Unset bool
	// Secret: never given a value in .env.example (an empty one, which the
	// process refuses where it needs the secret).
	Secret bool
	// ReadBy names who reads it when LoadAPI and LoadWorkers do not: the Go
	// runtime, or telemetry.Setup, which reads the OpenTelemetry variables.
	ReadBy string
	// Doc is what it means (markdown; .env.example gets it without backticks).
	Doc string
}

// Vars is every variable the processes read, in the order of the docs:
// both processes, then the API, then the workers.
var Vars = []Var{
	// Both processes.
	{Name: "DATABASE_URL", Process: ProcessBoth, Default: "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		Example: "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable",
		Doc: "PostgreSQL connection URL (`.env.example` uses database `orders`); through PgBouncer add " +
			"`default_query_exec_mode=cache_describe`, the only other mode accepted (see [PostgreSQL and PgBouncer](#postgresql-and-pgbouncer))"},
	{Name: "MIGRATION_DATABASE_URL", Process: ProcessBoth, DefaultNote: "`DATABASE_URL`", Unset: true, Example: "postgres://postgres@127.0.0.1:5432/orders?sslmode=disable",
		Doc: "a direct connection to the same database, for what needs a session of its own: migrations (their advisory lock), " +
			"the API's revocation feed (LISTEN), `/ready`'s migration check. Set it when `DATABASE_URL` goes through PgBouncer, " +
			"see [PostgreSQL and PgBouncer](#postgresql-and-pgbouncer)"},
	{Name: "DATABASE_MAX_CONNS", Process: ProcessBoth, Default: "16",
		Doc: "connections in each process's database pool"},
	{Name: "MIGRATE_ON_START", Process: ProcessBoth, Default: "true",
		Doc: "create the database if missing and apply pending migrations at start, under an advisory lock"},
	{Name: "LOG_LEVEL", Process: ProcessBoth, Default: "info",
		Doc: "`debug`, `info`, `warn` or `error`"},
	{Name: "LOG_FORMAT", Process: ProcessBoth, DefaultNote: "text on a terminal, else `json`", Example: "json", Unset: true,
		Doc: "`json` or `text`: the same fields either way (native `task up` uses text unless `.env` sets it)"},
	{Name: "SHUTDOWN_TIMEOUT", Process: ProcessBoth, Default: "15s",
		Doc: "how long SIGTERM waits for in-flight requests (the workers' handlers get `HANDLER_TIMEOUT` on top)"},
	{Name: "DEBUG_ADDR", Process: ProcessBoth, DefaultNote: "(none: off)", Example: "127.0.0.1:6060", Unset: true,
		Doc: "Go profiler (`/debug/pprof/`) on its own listener, e.g. `127.0.0.1:6060`"},
	{Name: "GOMEMLIMIT", Process: ProcessBoth, DefaultNote: "`30MiB` for the API", Example: "30MiB", Unset: true, ReadBy: "the Go runtime",
		Doc: "Go's soft memory limit; the API sets 30 MiB when it is unset (the collector works harder instead of growing the heap; never a hard failure)"},
	{Name: "GOGC", Process: ProcessBoth, DefaultNote: "`400`", Example: "400", Unset: true, ReadBy: "the Go runtime",
		Doc: "Go's collector target; both processes set 400 when it is unset (less collector CPU per request and per message; the API's heap stays bounded by its memory limit)"},
	{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Process: ProcessBoth, DefaultNote: "(none: tracing off)", Example: "http://localhost:4318", Unset: true, ReadBy: "telemetry.Setup",
		Doc: "OTLP/HTTP collector; spans go to `<endpoint>/v1/traces`"},
	{Name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Process: ProcessBoth, Unset: true, ReadBy: "telemetry.Setup",
		Doc: "full traces URL, instead of `OTEL_EXPORTER_OTLP_ENDPOINT`"},
	{Name: "OTEL_TRACES_EXPORTER", Process: ProcessBoth, Example: "otlp", Unset: true, ReadBy: "telemetry.Setup",
		Doc: "`none` turns tracing off, `otlp` on"},
	{Name: "OTEL_SERVICE_NAME", Process: ProcessBoth, DefaultNote: "`orders-api` / `orders-workers`", Unset: true, ReadBy: "telemetry.Setup",
		Doc: "service name on the spans"},
	{Name: "NOTIFY_SOCKET", Process: ProcessBoth, DefaultNote: "(none)", Unset: true, ReadBy: "the service manager's notify protocol",
		Doc: "set by systemd (`Type=notify`) or a test harness: where `READY=1` and `STOPPING=1` go (see [Operations](#operations))"},

	// The API.
	{Name: "HTTP_ADDR", Process: ProcessAPI, Default: ":8080",
		Doc: "API listen address"},
	{Name: "JWT_SECRET", Process: ProcessAPI, Secret: true, DefaultNote: "(required unless `JWT_PRIVATE_KEY_FILE` is set)",
		Doc: "HS256 key that signs access tokens, at least 32 bytes; with `JWT_PRIVATE_KEY_FILE` set it only verifies. " +
			"`task env` writes a random one; or generate one with `openssl rand -base64 48`"},
	{Name: "JWT_TTL", Process: ProcessAPI, Default: "30m",
		Doc: "access token lifetime"},
	{Name: "JWT_ISSUER", Process: ProcessAPI, Default: "orders-api",
		Doc: "`iss` claim of issued tokens; tokens from another issuer are refused"},
	{Name: "JWT_AUDIENCE", Process: ProcessAPI, Default: "orders-api",
		Doc: "`aud` claim of issued tokens; tokens whose `aud` does not name it are refused"},
	{Name: "JWT_PREVIOUS_SECRETS", Process: ProcessAPI, Secret: true,
		Doc: "comma-separated HS256 secrets (32 bytes or more each) that verify tokens but never sign: " +
			"to rotate `JWT_SECRET` with nobody logged out, move the old secret here for `JWT_TTL`"},
	{Name: "JWT_PRIVATE_KEY_FILE", Process: ProcessAPI,
		Doc: "PEM private key that signs tokens instead of `JWT_SECRET`: Ed25519 signs EdDSA, P-256 signs ES256 " +
			"(PKCS #8, or SEC 1 for P-256); its public key is served at `/.well-known/jwks.json`. " +
			"Create one with `openssl genpkey -algorithm ed25519 -out jwt.pem`"},
	{Name: "JWT_PREVIOUS_KEY_FILES", Process: ProcessAPI,
		Doc: "comma-separated PEM files of retired keys (private or public) that verify but never sign; published in the JWKS after the signing key"},
	{Name: "REFRESH_TOKEN_TTL", Process: ProcessAPI, Default: "336h", DefaultNote: "(14 days)",
		Doc: "lifetime of a refresh token; each refresh hands out a new one"},
	{Name: "REFRESH_REUSE_GRACE", Process: ProcessAPI, Default: "0s", DefaultNote: "(strict)",
		Doc: "a rotated refresh token presented again within this while its successor is unused (the client lost the answer) " +
			"gets new tokens instead of revoking its family"},
	{Name: "CORS_ALLOWED_ORIGINS", Process: ProcessAPI, Example: "http://localhost:3000",
		Doc: "comma-separated origins (`scheme://host[:port]`) allowed to call the API from a browser; " +
			"`*` allows any origin, but not together with `CORS_ALLOW_CREDENTIALS`"},
	{Name: "CORS_ALLOW_CREDENTIALS", Process: ProcessAPI, Default: "false",
		Doc: "send `Access-Control-Allow-Credentials: true` to the allowed origins " +
			"(cookies or HTTP auth from the browser; bearer tokens in `Authorization` do not need it)"},
	{Name: "TRUSTED_PROXIES", Process: ProcessAPI,
		Doc: "comma-separated IPs or CIDR ranges of reverse proxies whose `X-Forwarded-For` names the client; " +
			"empty: `X-Forwarded-For` is ignored and the peer address is the client"},
	{Name: "CACHE_TTL", Process: ProcessAPI, Default: "5m",
		Doc: "lifetime of cached orders in Redis; `0` turns the order cache off. Only processed orders are cached: " +
			"the workers set `processed_at` without telling the cache"},
	{Name: "IDEMPOTENCY_KEY_REQUIRED", Process: ProcessAPI, Default: "false",
		Doc: "`true`: `POST /orders/` without `Idempotency-Key` is a 400"},
	{Name: "IDEMPOTENCY_KEY_TTL", Process: ProcessAPI, Default: "24h",
		Doc: "how long an `Idempotency-Key` is remembered (a retry within it gets the first answer); the workers delete expired keys"},
	{Name: "REQUIRE_IF_MATCH", Process: ProcessAPI, Default: "false",
		Doc: "`true`: `PATCH /orders/{id}/` without `If-Match` is a 428"},
	{Name: "REDIS_URL", Process: ProcessAPI, Default: "redis://127.0.0.1:6379/0",
		Doc: "Redis URL (order cache, rate-limit budgets): one server, a Redis Cluster (`redis://h1:7000?addr=h2:7001&addr=h3:7002`) " +
			"or Sentinel (`redis://s1:26379?addr=s2:26379&addr=s3:26379&master_set=mymaster`); see [Scaling out](#scaling-out)"},
	{Name: "REDIS_KEY_PREFIX", Process: ProcessAPI, Default: "orders",
		Doc: "namespace of every Redis key (cache entries, rate-limit budgets); instances that share it share the cache " +
			"and the budgets. Letters, digits, `-` `_` `.` `:`"},
	{Name: "REDIS_TIMEOUT", Process: ProcessAPI, Default: "50ms",
		Doc: "deadline of every Redis call (without one, rueidis waits for an unreachable Redis until the request ends)"},
	{Name: "REDIS_BREAKER_FAILURES", Process: ProcessAPI, Default: "3",
		Doc: "consecutive failed Redis calls after which one PING decides whether the circuit breaker opens; " +
			"while it is open, requests skip Redis (PostgreSQL, in-process rate limits) without waiting"},
	{Name: "REDIS_BREAKER_PROBE_TIMEOUT", Process: ProcessAPI, Default: "1s",
		Doc: "deadline of that PING and of the probes while the breaker is open; calls miss `REDIS_TIMEOUT` when other " +
			"processes take every core, but a healthy Redis still answers this, so a slow machine does not open the breaker"},
	{Name: "REDIS_BREAKER_COOLDOWN", Process: ProcessAPI, Default: "1s",
		Doc: "probe interval (one PING, outside any request) while the breaker is open; the first answer closes it"},
	{Name: "RATE_LIMIT_ENABLED", Process: ProcessAPI, Default: "true",
		Doc: "rate limiting on or off: budgets in Redis shared by every instance, in-process per instance while Redis is " +
			"unavailable; `/health` and `/ready` are never limited. A budget is `LIMIT/PERIOD`: LIMIT requests at once, " +
			"refilled evenly over PERIOD"},
	{Name: "RATE_LIMIT_ANONYMOUS", Process: ProcessAPI, Default: "120/1m",
		Doc: "requests that authenticate no one (no credentials, or credentials that fail), per client IP"},
	{Name: "RATE_LIMIT_AUTH", Process: ProcessAPI, Default: "10/1m",
		Doc: "`POST /register/`, `/token/` and `/revoke/`, per client IP (against brute force)"},
	{Name: "RATE_LIMIT_LOGIN_EMAIL", Process: ProcessAPI, Default: "5/1m",
		Doc: "`POST /token/`, per target email and client IP (password guessing; per email alone would let anyone " +
			"lock a user out by spending that user's budget)"},
	{Name: "RATE_LIMIT_USER", Process: ProcessAPI, Default: "600/1m",
		Doc: "authenticated requests, per user"},
	{Name: "PASSWORD_HASH_WORKERS", Process: ProcessAPI, Default: "1",
		Doc: "password hashes computed at once (argon2id, 7 MiB and one core each); logins beyond it queue, " +
			"so a login flood leaves the other cores to everything else"},
	{Name: "PASSWORD_HASH_QUEUE_TIMEOUT", Process: ProcessAPI, Default: "1s",
		Doc: "longest a login or registration waits for a hashing worker; beyond it the answer is 503 with `Retry-After: 1`"},

	// The workers.
	{Name: "WORKERS_HTTP_ADDR", Process: ProcessWorkers, Default: ":8081",
		Doc: "workers status endpoint (`/health`, `/ready`, `/outbox`, `/metrics`)"},
	{Name: "AMQP_URL", Process: ProcessWorkers, Default: "amqp://guest:guest@127.0.0.1:5672/", //nolint:gosec // RabbitMQ's local default account, not a secret
		Doc: "RabbitMQ URL (event bus and task queue); several brokers of one cluster comma-separated (`amqp://u:p@h1:5672/,amqp://u:p@h2:5672/`), tried in turn on every (re)connect"},
	{Name: "AMQP_QUEUE_TYPE", Process: ProcessWorkers, Default: "classic",
		Doc: "`classic` or `quorum`: the type of every queue. Quorum queues are replicated on a RabbitMQ cluster (see " +
			"[Scaling out](#scaling-out)); a queue cannot change type in place, so changing it on a namespace in use stops the " +
			"workers at start with the migration to follow (a new `AMQP_NAMESPACE`, the old workers draining the old queues)"},
	{Name: "AMQP_NAMESPACE", Process: ProcessWorkers, Default: "orders",
		Doc: "prefix of every RabbitMQ exchange and queue (deployments sharing a broker differ here)"},
	{Name: "OUTBOX_FORWARDERS", Process: ProcessWorkers, Default: "8",
		Doc: "outbox forwarders per workers process; each publishes a batch, then waits once for RabbitMQ's confirms of the whole batch"},
	{Name: "OUTBOX_BATCH_SIZE", Process: ProcessWorkers, Default: "100",
		Doc: "outbox rows one forwarder claims, publishes and has confirmed at once"},
	{Name: "OUTBOX_POLL_INTERVAL", Process: ProcessWorkers, Default: "5ms",
		Doc: "least spacing of a process's outbox claims while events trickle in, so that they gather into batches; " +
			"a claim also waits for the process's previous one to finish (up to 50 ms), so batches grow when the machine is busy " +
			"(a claim that fills its batch is followed at once; the first event after a quiet spell is claimed at once)"},
	{Name: "OUTBOX_SAFETY_POLL", Process: ProcessWorkers, Default: "3s",
		Doc: "forwarders are woken by PostgreSQL notifications (`LISTEN outbox_messages`, on one connection of their own per " +
			"workers process to `MIGRATION_DATABASE_URL`, a direct connection); without one, a process still claims once per " +
			"this interval (at least `1s`), its only claims when idle"},
	{Name: "OUTBOX_RETENTION", Process: ProcessWorkers, Default: "24h",
		Doc: "forwarded outbox rows are deleted after this"},
	{Name: "PROCESS_ORDER_DURATION", Process: ProcessWorkers, Default: "2s",
		Doc: "simulated work per order in the background task"},
	{Name: "START_PROCESSING_CONCURRENCY", Process: ProcessWorkers, Default: "128",
		Doc: "`new_order` events handled at once per workers process (each waits for the confirm of the `process_order` task it publishes)"},
	{Name: "PROCESS_CONCURRENCY", Process: ProcessWorkers, Default: "128",
		Doc: "`process_order` tasks handled at once per workers process; their database writes are grouped into shared " +
			"transactions. With `PROCESS_ORDER_DURATION=2s` one process finishes at most `PROCESS_CONCURRENCY / 2` orders per second"},
	{Name: "HANDLER_MAX_RETRIES", Process: ProcessWorkers, Default: "5",
		Doc: "retries of a failing handler before the message goes to the dead-letter queue (a `new_order` event whose task " +
			"RabbitMQ has not taken is retried until it is, never dead-lettered)"},
	{Name: "HANDLER_RETRY_BACKOFF", Process: ProcessWorkers, Default: "200ms",
		Doc: "first retry delay, doubling up to 30 s: with the defaults 0.2, 0.4, 0.8, 1.6 and 3.2 s, 6.2 s in all"},
	{Name: "HANDLER_TIMEOUT", Process: ProcessWorkers, DefaultNote: "`PROCESS_ORDER_DURATION + 30s`", Example: "32s", Unset: true,
		Doc: "deadline of one handler attempt; must be longer than `PROCESS_ORDER_DURATION`"},
}

// lookup returns the variable called name.
func lookup(name string) (Var, bool) {
	for _, v := range Vars {
		if v.Name == name {
			return v, true
		}
	}
	return Var{}, false
}
