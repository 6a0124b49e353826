package outbox

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/stretchr/testify/assert"
)

func TestIdleBackoffDoublesWhileEmptyAndResetsOnEvents(t *testing.T) {
	t.Parallel()
	b := NewIdleBackoff(20*time.Millisecond, 160*time.Millisecond, time.Second)
	log := watermill.NopLogger{}
	var waits []time.Duration
	for range 6 {
		waits = append(waits, b.HandleError(log, true, nil))
	}
	assert.Equal(t, []time.Duration{20, 40, 80, 160, 160, 160}, scale(waits, time.Millisecond))
	assert.Zero(t, b.HandleError(log, false, nil), "a poll that found events polls again at once")
	assert.Equal(t, 20*time.Millisecond, b.HandleError(log, true, nil), "and the next empty poll starts from base")
	assert.Equal(t, time.Second, b.HandleError(log, false, errors.New("connection refused")), "query errors wait the retry interval")
}

func scale(ds []time.Duration, unit time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d / unit
	}
	return out
}
