package auth

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"

	"github.com/ordersvc/orders/internal/apperr"
)

func newHasher(t testing.TB, workers int) *Hasher {
	t.Helper()
	h, err := NewHasher(workers, time.Minute)
	require.NoError(t, err)
	return h
}

func TestHashAndVerify(t *testing.T) {
	t.Parallel()
	h := newHasher(t, 2)
	ctx := t.Context()

	hash, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(hash, fmt.Sprintf("$argon2id$v=%d$m=7168,t=5,p=1$", argon2.Version)), hash)
	require.Len(t, strings.Split(hash, "$"), 6)
	require.NotContains(t, hash, "correct horse")

	tests := []struct {
		password string
		want     bool
	}{
		{"correct horse battery staple", true},
		{"correct horse battery stapl", false},
		{"Correct horse battery staple", false},
		{"correct horse battery staple ", false},
		{"", false},
	}
	for _, tt := range tests {
		ok, err := h.Verify(ctx, tt.password, hash)
		require.NoError(t, err, "a wrong password is not an error")
		require.Equal(t, tt.want, ok, "password %q", tt.password)
	}

	again, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	require.NotEqual(t, hash, again, "each hash has its own salt")

	empty, err := h.Hash(ctx, "")
	require.NoError(t, err)
	ok, err := h.Verify(ctx, "", empty)
	require.NoError(t, err)
	require.True(t, ok)
}

// phc encodes an argon2id hash of password with explicit parameters, as
// another version of this service (or another library) would have stored it.
func phc(password string, salt []byte, memory, time uint32, threads uint8, keyLen uint32) string {
	key := argon2.IDKey([]byte(password), salt, time, memory, threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, memory, time, threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

func TestVerifyReadsParametersFromHash(t *testing.T) {
	t.Parallel()
	h := newHasher(t, 2)
	salt := []byte("0123456789abcdef")

	tests := []struct {
		name    string
		memory  uint32
		time    uint32
		threads uint8
	}{
		{"weaker than today's", 8 * 1024, 1, 1},
		{"more passes", 4 * 1024, 4, 1},
		{"two lanes", 8 * 1024, 2, 2},
		{"today's", argonMemoryKiB, argonTime, argonThreads},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hash := phc("s3cret", salt, tt.memory, tt.time, tt.threads, argonKeyLen)
			ok, err := h.Verify(t.Context(), "s3cret", hash)
			require.NoError(t, err)
			require.True(t, ok, "a hash made with other parameters must still verify")

			ok, err = h.Verify(t.Context(), "other", hash)
			require.NoError(t, err)
			require.False(t, ok)
		})
	}

	t.Run("changing a parameter changes the result", func(t *testing.T) {
		t.Parallel()
		hash := phc("s3cret", salt, 8*1024, 2, 1, argonKeyLen)
		tampered := strings.Replace(hash, "t=2", "t=1", 1)
		require.NotEqual(t, hash, tampered)
		ok, err := h.Verify(t.Context(), "s3cret", tampered)
		require.NoError(t, err)
		require.False(t, ok)
	})
}

func TestVerifyMalformedHash(t *testing.T) {
	t.Parallel()
	h := newHasher(t, 2)
	valid, err := h.Hash(t.Context(), "pw")
	require.NoError(t, err)
	parts := strings.Split(valid, "$") // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}

	tests := []struct {
		name string
		hash string
	}{
		{"empty", ""},
		{"plain text", "pw"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"too few parts", strings.Join(parts[:5], "$")},
		{"too many parts", valid + "$extra"},
		{"parameters not numbers", with(3, "m=lots,t=3,p=1")},
		{"parameters missing", with(3, "")},
		{"parameters reordered", with(3, "t=3,m=12288,p=1")},
		{"zero passes", with(3, "m=12288,t=0,p=1")},
		{"zero lanes", with(3, "m=12288,t=3,p=0")},
		{"lanes overflow", with(3, "m=12288,t=3,p=256")},
		{"negative memory", with(3, "m=-1,t=3,p=1")},
		{"salt not base64", with(4, "!!!")},
		{"key not base64", with(5, "***")},
		{"padded base64 salt", with(4, parts[4]+"==")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ok bool
			var err error
			require.NotPanics(t, func() { ok, err = h.Verify(t.Context(), "pw", tt.hash) })
			require.Error(t, err, "hash %q", tt.hash)
			require.False(t, ok)
		})
	}
}

func TestNewHasherWorkers(t *testing.T) {
	t.Parallel()
	tests := []struct{ workers, slots int }{
		{-3, 1},
		{0, 1},
		{1, 1},
		{4, 4},
	}
	for _, tt := range tests {
		h := newHasher(t, tt.workers)
		require.Equal(t, tt.slots, cap(h.slots), "workers %d", tt.workers)
		require.Empty(t, h.slots, "NewHasher must give its slot back")
		require.NotEmpty(t, h.dummy)
	}
}

// With every slot taken, hashing waits instead of running alongside: a
// context that ends first gets its error, and the hash starts once a slot frees.
func TestHasherBoundsConcurrency(t *testing.T) {
	t.Parallel()
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			t.Parallel()
			h := newHasher(t, workers)
			for range workers {
				h.slots <- struct{}{} // as if `workers` hashes were running
			}
			valid := phc("pw", []byte("0123456789abcdef"), 1024, 1, 1, argonKeyLen)

			calls := map[string]func(ctx context.Context) error{
				"Hash":          func(ctx context.Context) error { _, err := h.Hash(ctx, "pw"); return err },
				"Verify":        func(ctx context.Context) error { _, err := h.Verify(ctx, "pw", valid); return err },
				"VerifyNothing": func(ctx context.Context) error { return h.VerifyNothing(ctx, "pw") },
			}
			for name, call := range calls {
				start := time.Now()
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				err := call(ctx)
				cancel()
				require.ErrorIs(t, err, context.DeadlineExceeded, "%s must wait for a slot", name)
				require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, name)
			}

			// A queued hash starts as soon as one slot is released.
			done := make(chan error, 1)
			go func() { _, err := h.Hash(context.Background(), "pw"); done <- err }()
			select {
			case err := <-done:
				t.Fatalf("hash ran while every slot was taken (err %v)", err)
			case <-time.After(50 * time.Millisecond):
			}
			<-h.slots
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(time.Minute):
				t.Fatal("hash did not start after a slot was released")
			}
			require.Len(t, h.slots, workers-1, "the finished hash must give its slot back")
		})
	}
}

// A hash that finds every worker busy for longer than the queue deadline
// fails with apperr.ErrBusy after about the deadline, instead of
// waiting for its turn without bound.
func TestHasherQueueDeadline(t *testing.T) {
	t.Parallel()
	const deadline = 100 * time.Millisecond
	h, err := NewHasher(1, deadline)
	require.NoError(t, err)
	h.slots <- struct{}{} // as if a hash were running
	start := time.Now()
	_, err = h.Hash(t.Context(), "pw")
	took := time.Since(start)
	require.ErrorIs(t, err, apperr.ErrBusy)
	require.GreaterOrEqual(t, took, deadline)
	require.Less(t, took, 10*deadline, "it gives up at the deadline, not when the slot frees")

	// A slot freed within the deadline is taken.
	go func() { time.Sleep(deadline / 4); <-h.slots }()
	_, err = h.Hash(t.Context(), "pw")
	require.NoError(t, err)
	require.Empty(t, h.slots)
}
