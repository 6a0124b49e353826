package main

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ordersvc/orders/internal/auth"
	"github.com/ordersvc/orders/internal/ratelimit"
)

const (
	headerRateLimitLimit     = "RateLimit-Limit"
	headerRateLimitRemaining = "RateLimit-Remaining"
	headerRateLimitReset     = "RateLimit-Reset"
)

// rateLimits are the request budgets, applied by one middleware that runs
// after authentication has been decided from the headers (authenticator) and
// before the request validator: a flood is refused before any body is
// validated or any password hashed, and a request whose credentials failed
// draws on its address's budget like a request without any.
type rateLimits struct {
	limiter *ratelimit.Limiter
	// anonymous: per client IP, requests that authenticated no one (no
	// credentials, or credentials that failed).
	anonymous ratelimit.Rate
	// auth: per client IP on POST /register/, /token/ and /revoke/ (brute force).
	auth ratelimit.Rate
	// loginEmail: per target email and client IP on POST /token/ (guessing
	// one account's password), so that spending it from one address does not
	// lock the account's owner out from another.
	loginEmail ratelimit.Rate
	// user: per authenticated user.
	user ratelimit.Rate
	// rejected, when set, counts 429s by bucket.
	rejected *prometheus.CounterVec
}

// budget is one request budget a request draws on.
type budget struct {
	bucket, subject string
	rate            ratelimit.Rate
	refusal         string // the 429's detail
}

// middleware picks the budgets of a request: the login and registration
// endpoints per IP (and /token/ per email and IP), an authenticated user per
// user, anything else per IP.
func (l *rateLimits) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		if isProbePath(req.URL.Path) {
			return next(c)
		}
		if isCredentialEndpoint(req) {
			budgets := []budget{{"auth", c.RealIP(), l.auth, "too many registration or login attempts from this address"}}
			if req.URL.Path == "/token/" {
				email, err := formUsername(req)
				if err != nil {
					return err // an oversized body: 413, as without the limiter
				}
				if email != "" {
					budgets = append(budgets, budget{"login", ratelimit.Subject(email) + ":" + c.RealIP(), l.loginEmail, "too many login attempts for this account from this address"})
				}
			}
			return l.enforce(c, next, budgets...)
		}
		if userID, ok := auth.UserFrom(req.Context()); ok {
			return l.enforce(c, next, budget{"user", strconv.FormatInt(userID, 10), l.user, "too many requests for this user"})
		}
		return l.enforce(c, next, budget{"anonymous", c.RealIP(), l.anonymous, "too many requests from this address"})
	}
}

// enforce takes one request from each budget in turn and refuses at the
// first that is spent. The RateLimit-* headers describe the tightest one.
func (l *rateLimits) enforce(c echo.Context, next echo.HandlerFunc, budgets ...budget) error {
	var tightest ratelimit.Result
	for i, b := range budgets {
		r := l.limiter.Allow(c.Request().Context(), b.bucket, b.subject, b.rate)
		if !r.Allowed {
			if l.rejected != nil {
				l.rejected.WithLabelValues(b.bucket).Inc()
			}
			setRateLimitHeaders(c, r)
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.Itoa(max(ceilSeconds(r.RetryAfter), 1)))
			return &tooManyRequests{detail: fmt.Sprintf("%s; retry after %d s", b.refusal, max(ceilSeconds(r.RetryAfter), 1))}
		}
		if i == 0 || r.Remaining < tightest.Remaining {
			tightest = r
		}
	}
	setRateLimitHeaders(c, tightest)
	return next(c)
}

// setRateLimitHeaders sets the three headers with one allocation for their
// values, on every budgeted request.
func setRateLimitHeaders(c echo.Context, r ratelimit.Result) {
	h := c.Response().Header()
	v := []string{strconv.Itoa(r.Limit), strconv.Itoa(r.Remaining), strconv.Itoa(ceilSeconds(r.ResetAfter))}
	h[rateLimitKeys[0]] = v[0:1:1]
	h[rateLimitKeys[1]] = v[1:2:2]
	h[rateLimitKeys[2]] = v[2:3:3]
}

// rateLimitKeys are the RateLimit-* header names as Header.Set would store them.
var rateLimitKeys = [3]string{
	http.CanonicalHeaderKey(headerRateLimitLimit),
	http.CanonicalHeaderKey(headerRateLimitRemaining),
	http.CanonicalHeaderKey(headerRateLimitReset),
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// isProbePath: health probes and metrics scrapes are never budgeted.
func isProbePath(path string) bool {
	return path == "/health" || path == "/ready" || path == "/metrics"
}

func isCredentialEndpoint(req *http.Request) bool {
	return req.Method == http.MethodPost && (req.URL.Path == "/token/" || req.URL.Path == "/register/" || req.URL.Path == "/revoke/")
}

// formUsername reads the username of a form-encoded /token/ body and puts
// the body back for the body gate and the handler. It reads no more than a
// form body may hold; a longer one is the gate's to refuse.
func formUsername(req *http.Request) (string, error) {
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mt != echo.MIMEApplicationForm || req.Body == nil {
		return "", nil // the validator answers 422
	}
	head, err := io.ReadAll(io.LimitReader(req.Body, maxFormBytes+1))
	if err != nil {
		return "", err
	}
	req.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), req.Body), req.Body}
	if len(head) > maxFormBytes {
		return "", nil
	}
	form, err := url.ParseQuery(string(head))
	if err != nil {
		return "", nil //nolint:nilerr // unparsable: the body gate answers 422
	}
	return form.Get("username"), nil
}

// tooManyRequests is a spent budget; problemFor turns it into a 429.
type tooManyRequests struct{ detail string }

func (e *tooManyRequests) Error() string { return "rate limited: " + e.detail }
