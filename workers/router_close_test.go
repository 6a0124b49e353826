package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// A closer that panics (watermill-amqp's channel pool after a reconnect)
// becomes an error; the others' results pass through.
func TestCloseRecoveringTurnsAPanicIntoAnError(t *testing.T) {
	t.Parallel()
	var nilPtr *struct{ n int }
	err := closeRecovering(func() error { return errors.New("x" + string(rune('0'+nilPtr.n))) })
	require.ErrorContains(t, err, "recovered from a panic")
	require.NoError(t, closeRecovering(func() error { return nil }))
	require.EqualError(t, closeRecovering(func() error { return errors.New("refused") }), "refused")
}
