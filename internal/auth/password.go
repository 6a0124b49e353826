package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/ordersvc/orders/internal/apperr"
)

// Argon2id parameters: one of the equivalent OWASP-recommended settings
// (m=7 MiB, t=5, p=1). Of those, the smallest memory, for the same CPU cost
// per hash, so that a login flood keeps the API within its memory budget
// (docs/decisions.md). Existing hashes keep their own parameters.
const (
	argonMemoryKiB = 7 * 1024
	argonTime      = 5
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

var errMalformedHash = errors.New("malformed password hash")

// Hasher hashes and verifies passwords with argon2id. At most `workers`
// hashes run at once, so a flood of logins queues up instead of taking every
// core and a burst of memory from the requests that need neither. A hash
// waits for a worker at most queueTimeout: beyond that the queue is longer
// than a client should wait, and the answer is apperr.ErrBusy.
type Hasher struct {
	slots        chan struct{}
	queueTimeout time.Duration
	dummy        string // verified against when the user is unknown, to equalise timing
}

// NewHasher returns a Hasher running at most workers hashes concurrently,
// each waiting at most queueTimeout for its turn.
func NewHasher(workers int, queueTimeout time.Duration) (*Hasher, error) {
	h := &Hasher{slots: make(chan struct{}, max(workers, 1)), queueTimeout: queueTimeout}
	dummy, err := h.Hash(context.Background(), "timing-equaliser-not-a-password")
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// Hash returns the PHC-formatted argon2id hash of password.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key, err := h.derive(ctx, password, salt, argonMemoryKiB, argonTime, argonThreads)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether password matches the encoded hash. The parameters
// come from the hash itself, so they can be raised without breaking old users.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errMalformedHash
	}
	var memory, passes uint32
	var threads uint8
	// argon2 panics on zero passes or lanes: a corrupt row must not crash the request.
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &passes, &threads); err != nil || passes < 1 || threads < 1 {
		return false, errMalformedHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errMalformedHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return false, errMalformedHash
	}
	got, err := h.derive(ctx, password, salt, memory, passes, threads)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// VerifyNothing spends the time a real verification takes; used when the
// email is unknown so that the answer's timing does not reveal it.
func (h *Hasher) VerifyNothing(ctx context.Context, password string) error {
	_, err := h.Verify(ctx, password, h.dummy)
	return err
}

func (h *Hasher) derive(ctx context.Context, password string, salt []byte, memory, passes uint32, threads uint8) ([]byte, error) {
	if err := h.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-h.slots }()
	return argon2.IDKey([]byte(password), salt, passes, memory, threads, argonKeyLen), nil
}

// acquire takes a hashing slot, waiting at most queueTimeout.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(h.queueTimeout)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for a hashing slot: %w", ctx.Err())
	case <-timer.C:
		return fmt.Errorf("%w: every password hashing worker stayed busy for %s", apperr.ErrBusy, h.queueTimeout)
	}
}
