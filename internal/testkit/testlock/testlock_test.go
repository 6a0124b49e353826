package testlock

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// service returns a lock name of its own, so the test never waits for the
// real services' locks, and removes its file afterwards.
func service(t *testing.T) string {
	t.Helper()
	name := "selftest-" + rand.Text()[:8]
	t.Cleanup(func() { _ = os.Remove(filepath.Join(os.TempDir(), "orders-testlock-"+name)) })
	return name
}

// free reports whether nobody holds service's lock, probing it from a file
// description of its own.
func free(t *testing.T, service string) bool {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "orders-testlock-"+service), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	require.NoError(t, flock(f, syscall.LOCK_UN))
	return true
}

// TestExclusiveWaitsHoldingNothing: while one of its services is held by
// another test, Exclusive holds none of the others, so a test holding that
// one and waiting for another cannot deadlock with it.
func TestExclusiveWaitsHoldingNothing(t *testing.T) {
	t.Parallel()
	first, second := service(t), service(t)
	holding, release := make(chan struct{}), make(chan struct{})
	t.Run("group", func(t *testing.T) {
		t.Run("shared holder", func(t *testing.T) {
			t.Parallel()
			Shared(t, second)
			close(holding)
			<-release
		})
		t.Run("exclusive", func(t *testing.T) {
			t.Parallel()
			<-holding
			took := make(chan struct{})
			go func() {
				Exclusive(t, first, second)
				close(took)
			}()
			time.Sleep(200 * time.Millisecond)
			require.True(t, free(t, first), "the first lock is free while the second is busy")
			select {
			case <-took:
				t.Fatal("Exclusive returned while another test held the lock shared")
			default:
			}
			close(release)
			select {
			case <-took:
			case <-time.After(10 * time.Second):
				t.Fatal("Exclusive did not take the locks once they were free")
			}
			require.False(t, free(t, first))
			require.False(t, free(t, second))
		})
	})
	require.True(t, free(t, first), "released when the test ended")
	require.True(t, free(t, second), "released when the test ended")
}

// TestHolderMayAskAgain: a test holding a lock exclusively may take it again,
// shared or exclusive, through the helpers it calls, without waiting for itself.
func TestHolderMayAskAgain(t *testing.T) {
	t.Parallel()
	name := service(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Exclusive(t, name)
		Shared(t, name)
		Exclusive(t, name)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the holder waited for itself")
	}
	require.False(t, free(t, name))
}
