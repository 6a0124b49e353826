package auth

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// newService returns a Service on its own migrated database, with
// revocations loaded from it (but not followed: one instance sees its own
// revocations without notifications).
func newService(t *testing.T, hasher *Hasher) *Service {
	t.Helper()
	return newServiceWith(t, hasher, RefreshSettings{TTL: 24 * time.Hour})
}

func newServiceWith(t testing.TB, hasher *Hasher, refresh RefreshSettings) *Service {
	t.Helper()
	pool, _ := testdb.Pool(t, 4)
	revocations := NewRevocations()
	require.NoError(t, revocations.Load(t.Context(), db.New(pool)))
	settings := testSettings(30 * time.Minute)
	settings.Revocations = revocations
	return NewService(pool, hasher, NewTokens(settings), refresh)
}

func TestServiceRegisterAndLogin(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 2))
	ctx := t.Context()

	alice, err := s.Register(ctx, "  Alice@Example.com ", "wonderland")
	require.NoError(t, err)
	require.Positive(t, alice.ID)
	require.Equal(t, "Alice@Example.com", alice.Email, "stored trimmed, case kept")

	bob, err := s.Register(ctx, "bob@example.com", "builder!")
	require.NoError(t, err)
	require.NotEqual(t, alice.ID, bob.ID)

	t.Run("duplicate email in any case", func(t *testing.T) {
		for _, email := range []string{"Alice@Example.com", "alice@example.com", "ALICE@EXAMPLE.COM", " alice@example.com"} {
			_, err := s.Register(ctx, email, "another password")
			require.ErrorIs(t, err, apperr.ErrAlreadyExists, email)
		}
	})

	t.Run("login", func(t *testing.T) {
		for _, email := range []string{"Alice@Example.com", "alice@example.com", " ALICE@example.COM "} {
			grant, err := s.Login(ctx, email, "wonderland")
			require.NoError(t, err, email)
			id, err := s.Authenticate(grant.AccessToken)
			require.NoError(t, err)
			require.Equal(t, alice.ID, id, email)
		}
		grant, err := s.Login(ctx, "bob@example.com", "builder!")
		require.NoError(t, err)
		id, err := s.Authenticate(grant.AccessToken)
		require.NoError(t, err)
		require.Equal(t, bob.ID, id)
	})

	t.Run("the duplicate did not replace the password", func(t *testing.T) {
		_, err := s.Login(ctx, "alice@example.com", "another password")
		require.ErrorIs(t, err, apperr.ErrUnauthenticated)
	})

	t.Run("wrong credentials look the same", func(t *testing.T) {
		_, wrongPassword := s.Login(ctx, "alice@example.com", "Wonderland")
		_, unknownEmail := s.Login(ctx, "carol@example.com", "wonderland")
		_, otherUsersPassword := s.Login(ctx, "alice@example.com", "builder!")
		for _, err := range []error{wrongPassword, unknownEmail, otherUsersPassword} {
			require.ErrorIs(t, err, apperr.ErrUnauthenticated)
		}
		require.Equal(t, wrongPassword.Error(), unknownEmail.Error(), "the error must not tell which part was wrong")
	})

	t.Run("authenticate rejects garbage", func(t *testing.T) {
		_, err := s.Authenticate("garbage")
		require.ErrorIs(t, err, apperr.ErrUnauthenticated)
	})

	require.Equal(t, 1800, s.TokenTTLSeconds())
}

// The users table checks the length, but the domain refuses first, with a
// field error rather than a database error.
func TestServiceRegisterRefusesWhatIsNotAnAddress(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	for _, email := range []string{"ab", "a＠b@example.com", "alice\u200b@example.com"} {
		_, err := s.Register(t.Context(), email, "password")
		var verr *apperr.ValidationError
		require.ErrorAs(t, err, &verr, "%q", email)
		require.Equal(t, "body.email", verr.Fields[0].Field)
	}
}

// Emails are stored and looked up in NFKC: a full-width spelling is the same
// account, and an invisible character does not make another one.
func TestServiceEmailsAreNormalised(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 2))
	ctx := t.Context()

	alice, err := s.Register(ctx, "alice@example.com", "wonderland")
	require.NoError(t, err)
	carol, err := s.Register(ctx, "ｃａｒｏｌ@example.com", "carol's password")
	require.NoError(t, err)
	require.Equal(t, "carol@example.com", carol.Email, "stored normalised")

	t.Run("register", func(t *testing.T) {
		for _, email := range []string{"ＡＬＩＣＥ@example.com", "alice＠example.com", "carol@example.com", "CAROL@EXAMPLE.COM"} {
			_, err := s.Register(ctx, email, "another password")
			require.ErrorIs(t, err, apperr.ErrAlreadyExists, email)
		}
		for _, email := range []string{"alice\u200b@example.com", "\ufeffalice@example.com", "\u202ealice@example.com"} {
			_, err := s.Register(ctx, email, "another password")
			var verr *apperr.ValidationError
			require.ErrorAs(t, err, &verr, "%q", email)
			require.Equal(t, "body.email", verr.Fields[0].Field)
		}
	})

	t.Run("login", func(t *testing.T) {
		for email, want := range map[string]User{
			"ＡＬＩＣＥ@example.com": alice,
			"ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ": alice,
			"carol@example.com": carol,
			"ｃａｒｏｌ@example.com": carol,
		} {
			password := map[int64]string{alice.ID: "wonderland", carol.ID: "carol's password"}[want.ID]
			grant, err := s.Login(ctx, email, password)
			require.NoError(t, err, email)
			id, err := s.Authenticate(grant.AccessToken)
			require.NoError(t, err)
			require.Equal(t, want.ID, id, email)
		}
		for _, email := range []string{"alice\u200b@example.com", "\ufeffalice@example.com", "ali\x00ce@example.com", "\xff@example.com"} {
			_, err := s.Login(ctx, email, "wonderland")
			var verr *apperr.ValidationError
			require.ErrorAs(t, err, &verr, "%q", email)
			require.Equal(t, "body.username", verr.Fields[0].Field)
		}
	})
}

// An unknown email must cost a password verification, like a wrong password,
// so response timing does not reveal which emails are registered. Proven
// without timing: with the hasher's only slot taken, the unknown-email login
// waits for it.
func TestLoginUnknownEmailWaitsForTheHasher(t *testing.T) {
	t.Parallel()
	h := newHasher(t, 1)
	s := newService(t, h)

	h.slots <- struct{}{} // a hash is "running"
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := s.Login(ctx, "nobody@example.com", "password")
	<-h.slots

	require.ErrorIs(t, err, context.DeadlineExceeded, "the unknown-email path must use the hasher")
	require.NotErrorIs(t, err, apperr.ErrUnauthenticated)
	require.Contains(t, err.Error(), "hashing slot")

	_, err = s.Login(t.Context(), "nobody@example.com", "password")
	require.ErrorIs(t, err, apperr.ErrUnauthenticated)
}

// The same property measured, with a wide margin: an unknown-email login
// takes at least half as long as one verification. Not parallel, so that the
// package's other hashing tests are paused while it measures; interleaved
// runs and minimums keep a busy machine (which only slows things down, in
// bursts) from failing it.
func TestLoginUnknownEmailTakesAVerification(t *testing.T) { // not parallel: measures time
	h := newHasher(t, 2)
	s := newService(t, h)
	ctx := t.Context()
	_, err := s.Register(ctx, "known@example.com", "password")
	require.NoError(t, err)
	hash, err := h.Hash(ctx, "password")
	require.NoError(t, err)

	_, err = s.Login(ctx, "unknown@example.com", "password") // warm up: pool connection, allocator
	require.ErrorIs(t, err, apperr.ErrUnauthenticated)

	const runs = 5
	verify, unknown := time.Duration(1<<62), time.Duration(1<<62)
	for range runs {
		start := time.Now()
		_, err := h.Verify(ctx, "password", hash)
		require.NoError(t, err)
		verify = min(verify, time.Since(start))

		start = time.Now()
		_, err = s.Login(ctx, "unknown@example.com", "password")
		require.ErrorIs(t, err, apperr.ErrUnauthenticated)
		unknown = min(unknown, time.Since(start))
	}
	t.Logf("one verification: %s, unknown-email login: %s", verify, unknown)
	require.GreaterOrEqual(t, unknown, verify/2, "an unknown email must cost about one password verification")
}
