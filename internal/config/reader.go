package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordersvc/orders/internal/messaging"
)

// reader collects every invalid variable, so that one start reports them all.
type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) fail(name string, err error) {
	r.errs = append(r.errs, fmt.Errorf("%s %w", name, err))
}

// get reads the variable name with parse; unset or blank, it is the default
// Vars declares for it. A value parse refuses is reported under its name.
func get[T any](r *reader, name string, parse func(string) (T, error)) T {
	var def T
	v, ok := lookup(name)
	switch {
	case !ok:
		r.fail(name, errors.New("is read but not declared in config.Vars"))
	case v.Default != "":
		d, err := parse(v.Default)
		if err != nil {
			r.fail(name, fmt.Errorf("has an invalid default in config.Vars: %w", err))
		}
		def = d
	}
	return getOr(r, name, parse, def)
}

// getOr is get with a default computed from other variables.
func getOr[T any](r *reader, name string, parse func(string) (T, error), def T) T {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	out, err := parse(v)
	if err != nil {
		r.fail(name, err)
		return def
	}
	return out
}

// secret reads a secret as it is: spaces are not trimmed off a key.
func (r *reader) secret(name string) []byte {
	if _, ok := lookup(name); !ok {
		r.fail(name, errors.New("is read but not declared in config.Vars"))
	}
	return []byte(r.getenv(name))
}

func parseString(v string) (string, error) { return v, nil }

func parseURL(v string) (string, error) {
	// "redis:6379" parses as scheme "redis" with opaque "6379": a host:port
	// without "//", which rueidis silently turns into localhost:6379.
	if u, err := url.Parse(v); err != nil || u.Scheme == "" || u.Opaque != "" {
		return "", fmt.Errorf("must be a URL such as scheme://host:port/..., got %q", redact(v))
	}
	return v, nil
}

// parseDatabaseURL is parseURL plus a check of pgx's default_query_exec_mode
// parameter. Two modes work with this service's queries: cache_statement
// (pgx's default: named prepared statements, for direct connections) and
// cache_describe (unnamed statements, the one for PgBouncer in transaction
// pooling). The others are refused: describe_exec needs two round trips on
// one session, which a transaction pooler does not keep, and exec and
// simple_protocol cannot encode the uuid arrays the queries take.
func parseDatabaseURL(v string) (string, error) {
	if _, err := parseURL(v); err != nil {
		return "", err
	}
	u, _ := url.Parse(v)
	switch mode := u.Query().Get("default_query_exec_mode"); mode {
	case "", "cache_statement", "cache_describe":
		return v, nil
	default:
		return "", fmt.Errorf("default_query_exec_mode must be cache_statement (the default, for a direct connection) or cache_describe (behind PgBouncer in transaction pooling), got %q", mode)
	}
}

func parseLogFormat(v string) (string, error) {
	switch f := strings.ToLower(v); f {
	case "json", "text":
		return f, nil
	}
	return "", fmt.Errorf("must be json or text (unset: text on a terminal, JSON otherwise), got %q", v)
}

// parseBrokers reads AMQP_URL: one broker URL or several, comma-separated
// (see messaging.ParseBrokers).
func parseBrokers(v string) (string, error) {
	if _, err := messaging.ParseBrokers(v); err != nil {
		return "", err
	}
	return v, nil
}

func parseQueueType(v string) (string, error) {
	switch f := strings.ToLower(v); f {
	case messaging.ClassicQueues, messaging.QuorumQueues:
		return f, nil
	}
	return "", fmt.Errorf("must be %s or %s, got %q", messaging.ClassicQueues, messaging.QuorumQueues, v)
}

func parseDuration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("must be a non-negative duration such as 30s or 5m, got %q", v)
	}
	return d, nil
}

func parsePositiveDuration(v string) (time.Duration, error) {
	d, err := parseDuration(v)
	if err == nil && d == 0 {
		err = errors.New("must be greater than zero")
	}
	return d, err
}

// parseRate reads a budget written as LIMIT/PERIOD, for example 10/1m.
func parseRate(v string) (Rate, error) {
	limit, period, _ := strings.Cut(v, "/")
	n, err := strconv.Atoi(strings.TrimSpace(limit))
	d, derr := time.ParseDuration(strings.TrimSpace(period))
	if err != nil || derr != nil || n < 1 || d <= 0 {
		return Rate{}, fmt.Errorf("must be LIMIT/PERIOD with a positive limit and duration, such as 10/1m, got %q", v)
	}
	return Rate{Limit: n, Period: d}, nil
}

// parseNetworks reads a comma-separated list of CIDR ranges or single
// addresses.
func parseNetworks(v string) ([]*net.IPNet, error) {
	parts, _ := parseList(v)
	var out []*net.IPNet
	for _, part := range parts {
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
			return nil, fmt.Errorf("must list IP addresses or CIDR ranges such as 10.0.0.0/8, got %q", part)
		}
		out = append(out, network)
	}
	return out, nil
}

// parseKeyPrefix reads the namespace of Redis keys; ':' separates its parts.
func parseKeyPrefix(v string) (string, error) {
	for _, c := range v {
		if !isNameRune(c) && c != ':' {
			return "", fmt.Errorf("may hold only letters, digits, '-', '_', '.' and ':', got %q", v)
		}
	}
	return v, nil
}

// parseName reads an identifier used in RabbitMQ exchange and queue names.
func parseName(v string) (string, error) {
	for _, c := range v {
		if !isNameRune(c) {
			return "", fmt.Errorf("may hold only letters, digits, '-', '_' and '.', got %q", v)
		}
	}
	return v, nil
}

func parsePositiveInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("must be a positive integer, got %q", v)
	}
	return n, nil
}

func parseNonNegativeInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("must be a non-negative integer, got %q", v)
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("must be true or false, got %q", v)
	}
	return b, nil
}

// parseList reads a comma-separated list; spaces around each item and empty
// items are dropped.
func parseList(v string) ([]string, error) {
	var out []string
	for part := range strings.SplitSeq(v, ",") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// parseSecrets reads a comma-separated list of secrets; spaces around each
// are not part of it.
func parseSecrets(v string) ([][]byte, error) {
	parts, _ := parseList(v)
	var out [][]byte
	for _, s := range parts {
		out = append(out, []byte(s))
	}
	return out, nil
}

func parseLevel(v string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return 0, fmt.Errorf("must be debug, info, warn or error, got %q", v)
	}
	return l, nil
}

// checkOrigins accepts "*" or origins (scheme://host[:port], nothing more);
// "*" together with credentials would let any site act as the user.
func (r *reader) checkOrigins(name string, origins []string, credentials bool) {
	for _, o := range origins {
		if o == "*" {
			if credentials {
				r.fail(name, errors.New("must not contain * when CORS_ALLOW_CREDENTIALS=true; list the origins"))
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			r.fail(name, fmt.Errorf("must list origins such as https://app.example.com (scheme, host, optional port), got %q", o))
		}
	}
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
