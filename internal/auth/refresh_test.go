package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

// loggedIn registers a user (one password hash) and starts a refresh family
// for it, as a login would.
func loggedIn(t *testing.T, s *Service) (int64, Grant) {
	t.Helper()
	u, err := s.Register(t.Context(), uniqueTestEmail(), "a password")
	require.NoError(t, err)
	return u.ID, login(t, s, u.ID)
}

// login starts another refresh family for userID (another device).
func login(t *testing.T, s *Service, userID int64) Grant {
	t.Helper()
	g, err := s.startFamily(t.Context(), userID)
	require.NoError(t, err)
	return g
}

func uniqueTestEmail() string { return "user-" + uuid.NewString()[:13] + "@example.com" }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func refresh(t *testing.T, s *Service, g Grant) Grant {
	t.Helper()
	next, err := s.Refresh(t.Context(), g.RefreshToken)
	require.NoError(t, err)
	return next
}

// requireAccess asserts whether g's access token authenticates userID.
func requireAccess(t *testing.T, s *Service, g Grant, userID int64, works bool) {
	t.Helper()
	id, err := s.Authenticate(g.AccessToken)
	if works {
		require.NoError(t, err)
		require.Equal(t, userID, id)
		return
	}
	require.ErrorIs(t, err, apperr.ErrUnauthenticated)
}

func requireInvalidGrant(t *testing.T, s *Service, refreshToken string) {
	t.Helper()
	_, err := s.Refresh(t.Context(), refreshToken)
	require.ErrorIs(t, err, apperr.ErrInvalidGrant)
}

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	userID, first := loggedIn(t, s)
	require.Len(t, first.RefreshToken, 43, "256 random bits in base64url")

	second := refresh(t, s, first)
	require.NotEqual(t, first.RefreshToken, second.RefreshToken)
	require.NotEqual(t, first.AccessToken, second.AccessToken)
	requireAccess(t, s, second, userID, true)
	requireAccess(t, s, first, userID, true) // rotation does not revoke an access token

	third := refresh(t, s, second)
	requireAccess(t, s, third, userID, true)
}

// Only the hash of a refresh token is stored.
func TestRefreshTokensAreStoredAsHashes(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	_, g := loggedIn(t, s)
	var stored []byte
	var found bool
	err := s.pool.QueryRow(t.Context(), "SELECT token_hash, position($1::bytea IN token_hash) > 0 FROM refresh_tokens", []byte(g.RefreshToken[:16])).Scan(&stored, &found)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(g.RefreshToken))
	require.Equal(t, sum[:], stored)
	require.False(t, found)
}

// Presenting a rotated token again revokes the family: every refresh token
// of it and every access token issued from it. Another login of the same
// user is another family and keeps working.
func TestRefreshReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	userID, first := loggedIn(t, s)
	second := refresh(t, s, first)
	third := refresh(t, s, second)
	otherDevice := login(t, s, userID)

	requireInvalidGrant(t, s, first.RefreshToken) // stolen and replayed
	requireInvalidGrant(t, s, third.RefreshToken) // the legitimate client's current token died with it
	requireInvalidGrant(t, s, second.RefreshToken)
	for _, g := range []Grant{first, second, third} {
		requireAccess(t, s, g, userID, false)
	}
	requireAccess(t, s, otherDevice, userID, true)
	refresh(t, s, otherDevice)
}

// A client that lost the answer to a refresh may present the same token
// again within the grace: it gets new tokens, and the ones it never
// received are retired (without revoking the family). Once the answer's
// successor was used, or after the grace, presenting it again is reuse.
func TestRefreshReuseGrace(t *testing.T) {
	t.Parallel()
	s := newServiceWith(t, newHasher(t, 1), RefreshSettings{TTL: time.Hour, ReuseGrace: time.Minute})
	userID, first := loggedIn(t, s)
	lost := refresh(t, s, first)

	retry := refresh(t, s, first) // within the grace, lost unused
	requireAccess(t, s, retry, userID, true)
	requireInvalidGrant(t, s, lost.RefreshToken)
	requireAccess(t, s, lost, userID, false)
	requireAccess(t, s, retry, userID, true) // the lost token did not take the family with it

	next := refresh(t, s, retry)
	latest := refresh(t, s, next)
	requireInvalidGrant(t, s, retry.RefreshToken) // its successor was used: not a lost answer, reuse
	requireAccess(t, s, latest, userID, false)
	requireInvalidGrant(t, s, latest.RefreshToken)

	// After the grace, the same retry is reuse.
	_, again := loggedIn(t, s)
	refresh(t, s, again)
	s.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	requireInvalidGrant(t, s, again.RefreshToken)
}

func TestRefreshTokenExpires(t *testing.T) {
	t.Parallel()
	s := newServiceWith(t, newHasher(t, 1), RefreshSettings{TTL: time.Minute})
	userID, g := loggedIn(t, s)
	s.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	requireInvalidGrant(t, s, g.RefreshToken)
	requireAccess(t, s, g, userID, true) // an expired refresh token is not a reuse
}

func TestRefreshRefusesWhatIsNotOurs(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	_, g := loggedIn(t, s)
	for name, token := range map[string]string{
		"unknown":           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"too short":         g.RefreshToken[:42],
		"too long":          g.RefreshToken + "A",
		"not base64url":     "!" + g.RefreshToken[1:],
		"an access token":   g.AccessToken,
		"non-canonical b64": g.RefreshToken[:42] + "B", // padding bits set: decodes, but is another string
	} {
		_, err := s.Refresh(t.Context(), token)
		require.ErrorIs(t, err, apperr.ErrInvalidGrant, name)
	}
	_, err := s.Refresh(t.Context(), "")
	var verr *apperr.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "body.refresh_token", verr.Fields[0].Field)
	refresh(t, s, g) // the control
}

// The same token presented at once by several clients (a thief and the
// owner): at most one exchange succeeds, and the family ends revoked, its
// winner's tokens included.
func TestRefreshRaceOnOneToken(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	userID, g := loggedIn(t, s)
	const clients = 6
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []Grant
	)
	for range clients {
		wg.Go(func() {
			next, err := s.Refresh(context.Background(), g.RefreshToken)
			if err != nil {
				if !errors.Is(err, apperr.ErrInvalidGrant) { // not require: off the test goroutine
					t.Errorf("a losing exchange: %v, want ErrInvalidGrant", err)
				}
				return
			}
			mu.Lock()
			winners = append(winners, next)
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Len(t, winners, 1, "exactly one exchange succeeds")
	requireInvalidGrant(t, s, winners[0].RefreshToken)
	requireAccess(t, s, winners[0], userID, false)
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	ctx := t.Context()
	userID, first := loggedIn(t, s)
	second := refresh(t, s, first)
	other := login(t, s, userID)

	t.Run("an access token, by itself", func(t *testing.T) {
		require.NoError(t, s.Revoke(ctx, other.AccessToken))
		requireAccess(t, s, other, userID, false)
		refreshed := refresh(t, s, other) // its refresh token still works
		requireAccess(t, s, refreshed, userID, true)
		require.NoError(t, s.Revoke(ctx, other.AccessToken), "again: nothing left to revoke")
	})
	t.Run("a refresh token, with its family", func(t *testing.T) {
		require.NoError(t, s.Revoke(ctx, first.RefreshToken)) // a retired one names the family too
		requireInvalidGrant(t, s, second.RefreshToken)
		requireAccess(t, s, first, userID, false)
		requireAccess(t, s, second, userID, false)
		require.NoError(t, s.Revoke(ctx, second.RefreshToken), "again: nothing left to revoke")
	})
	t.Run("what is not a live token of ours", func(t *testing.T) {
		for _, token := range []string{"", "garbage", "a.b.c", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", first.AccessToken + "x"} {
			require.NoError(t, s.Revoke(ctx, token), "%q", token)
		}
	})
	var revoked int
	require.NoError(t, s.pool.QueryRow(ctx, "SELECT count(*) FROM revoked_tokens").Scan(&revoked))
	require.Equal(t, 3, revoked, "other's access token, and the two access tokens of the family")
}

// A revocation committed on another instance reaches this one through the
// notification, within a second, and through the resync after a lost
// connection.
func TestFollowSeesRevocationsOfAnotherInstance(t *testing.T) {
	t.Parallel()
	s := newService(t, newHasher(t, 1))
	dbURL := s.pool.Config().ConnString()
	userID, g := loggedIn(t, s)
	other := login(t, s, userID)

	follower := NewRevocations()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); follower.Follow(ctx, dbURL, discardLogger()) }()
	t.Cleanup(func() { cancel(); <-done })
	elsewhere := tokensWith(s.tokens.settings.Keys)
	elsewhere.now = time.Now
	elsewhere.settings.Revocations = follower
	require.Eventually(t, func() bool { _, err := elsewhere.Verify(g.AccessToken); return err == nil }, 5*time.Second, 10*time.Millisecond)

	start := time.Now()
	require.NoError(t, s.Revoke(t.Context(), g.AccessToken))
	require.Eventually(t, func() bool { _, err := elsewhere.Verify(g.AccessToken); return err != nil }, time.Second, 5*time.Millisecond,
		"the other instance still accepts the revoked token")
	t.Logf("revocation seen by the other instance after %s", time.Since(start))

	// Kill the follower's connection, revoke while it reconnects: the load
	// on reconnection brings the revocation.
	var killed int
	require.NoError(t, s.pool.QueryRow(t.Context(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1", revocationFeedName).Scan(&killed))
	require.Equal(t, 1, killed)
	require.NoError(t, s.Revoke(t.Context(), other.AccessToken))
	require.Eventually(t, func() bool { _, err := elsewhere.Verify(other.AccessToken); return err != nil }, 5*time.Second, 10*time.Millisecond)
}

// Until the revocations are loaded, no token is accepted.
func TestUnloadedRevocationsRefuseTokens(t *testing.T) {
	t.Parallel()
	tokens := tokensAt(testKey, "orders-api", testEpoch)
	tokens.settings.Revocations = NewRevocations()
	raw := issue(t, tokens, 42)
	_, err := tokens.Verify(raw)
	require.ErrorIs(t, err, apperr.ErrUnavailable)
	require.NotErrorIs(t, err, apperr.ErrUnauthenticated)
}

// A revoked token is refused even when the verified-token cache holds it.
func TestRevocationBeatsTheVerifiedCache(t *testing.T) {
	t.Parallel()
	tokens := tokensAt(testKey, "orders-api", testEpoch)
	revocations := NewRevocations()
	revocations.loaded = true
	tokens.settings.Revocations = revocations
	issued, err := tokens.Issue(42)
	require.NoError(t, err)
	_, err = tokens.Verify(issued.Token)
	require.NoError(t, err)
	require.Len(t, tokens.verified, 1)

	revocations.add(issued.ID, issued.Expires)
	_, err = tokens.Verify(issued.Token)
	require.ErrorIs(t, err, apperr.ErrUnauthenticated)
}
