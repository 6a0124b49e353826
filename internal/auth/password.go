package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: one of the equivalent OWASP-recommended settings
// (m=7 MiB, t=5, p=1). Of those, the smallest memory: under a login flood the
// API's resident memory stays within its 64 MiB budget (measured: 61 MiB with
// one hashing worker, against 108 MiB for m=12 MiB and two workers), for the
// same CPU cost per hash. Existing hashes keep their own parameters.
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
// core and a burst of memory from the requests that need neither.
type Hasher struct {
	slots chan struct{}
	dummy string // verified against when the user is unknown, to equalise timing
}

// NewHasher returns a Hasher running at most workers hashes concurrently.
func NewHasher(workers int) (*Hasher, error) {
	h := &Hasher{slots: make(chan struct{}, max(workers, 1))}
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
	var memory, time uint32
	var threads uint8
	// argon2 panics on zero passes or lanes: a corrupt row must not crash the request.
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &memory, &time, &threads); err != nil || time < 1 || threads < 1 {
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
	got, err := h.derive(ctx, password, salt, memory, time, threads)
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

func (h *Hasher) derive(ctx context.Context, password string, salt []byte, memory, time uint32, threads uint8) ([]byte, error) {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for a hashing slot: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	return argon2.IDKey([]byte(password), salt, time, memory, threads, argonKeyLen), nil
}
