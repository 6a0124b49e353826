package auth

import (
	"context"
	"crypto/elliptic"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// BenchmarkVerify prints what checking a bearer token costs per request:
// a token the verified-token cache holds (every request after a client's
// first), with the revocation set empty or holding 10,000 revocations, and
// a token verified from scratch for each algorithm.
func BenchmarkVerify(b *testing.B) {
	ed := privateKey(b, pkcs8(b, newEd25519(b)))
	es := privateKey(b, pkcs8(b, newECDSA(b, elliptic.P256())))
	for _, revoked := range []int{0, 10_000} {
		b.Run("cached/revoked="+strconv.Itoa(revoked), func(b *testing.B) {
			tokens := tokensWith(mustKeys(b, SecretKey(testKey)))
			tokens.now = time.Now
			tokens.settings.Revocations = revocationsOf(revoked)
			raw := issueB(b, tokens)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tokens.Verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for _, key := range []Key{SecretKey(testKey), ed, es} {
		b.Run("uncached/"+key.Algorithm().String(), func(b *testing.B) {
			tokens := tokensWith(mustKeys(b, key))
			tokens.now = time.Now
			tokens.settings.Revocations = revocationsOf(0)
			raw := issueB(b, tokens)
			b.ReportAllocs()
			for b.Loop() {
				clear(tokens.verified)
				if _, err := tokens.Verify(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRevocationPropagation prints how long a revocation committed by
// one instance takes to reach another instance's in-memory set through
// PostgreSQL's NOTIFY: p50 and p99 in milliseconds.
func BenchmarkRevocationPropagation(b *testing.B) {
	s := newServiceWith(b, newHasher(b, 1), RefreshSettings{TTL: time.Hour})
	follower := NewRevocations()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); follower.Follow(ctx, s.pool.Config().ConnString(), discardLogger()) }()
	b.Cleanup(func() { cancel(); <-done })
	for follower.check(uuid.New()) != nil {
		time.Sleep(time.Millisecond)
	}
	var seen []time.Duration
	for b.Loop() {
		issued, err := s.tokens.Issue(1)
		require.NoError(b, err)
		start := time.Now()
		require.NoError(b, s.Revoke(ctx, issued.Token))
		for follower.check(issued.ID) == nil {
			if time.Since(start) > 5*time.Second {
				b.Fatal("the revocation did not arrive within 5 s")
			}
			time.Sleep(50 * time.Microsecond)
		}
		seen = append(seen, time.Since(start))
	}
	slices.Sort(seen)
	quantile := func(q float64) float64 {
		return float64(seen[int(q*float64(len(seen)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(quantile(0.5), "p50-ms")
	b.ReportMetric(quantile(0.99), "p99-ms")
}

func revocationsOf(n int) *Revocations {
	r := NewRevocations()
	r.loaded = true
	for range n {
		r.jtis[uuid.New()] = time.Now().Add(time.Hour)
	}
	return r
}

func issueB(b *testing.B, tokens *Tokens) string {
	b.Helper()
	issued, err := tokens.Issue(42)
	require.NoError(b, err)
	return issued.Token
}
