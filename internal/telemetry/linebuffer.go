package telemetry

import (
	"io"
	"sync"
	"time"
)

// LineBuffer batches log lines on their way to w, so that a line per
// request does not cost a write system call per request. Lines written
// through Buffered wait at most flushEvery, or until limit bytes are
// pending (then the writer that filled it writes them all, so memory stays
// bounded and nothing is dropped). Lines written to the LineBuffer itself
// go out at once, after what is pending, so the order of lines is kept and
// a start, a stop or an error is never held back. Close writes what is
// pending; the process calls it last on shutdown (SIGTERM included), and
// later writes go straight to w.
type LineBuffer struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte
	limit   int
	closed  bool

	stop chan struct{}
	done chan struct{}
}

// NewLineBuffer starts a LineBuffer writing to w at least every flushEvery.
func NewLineBuffer(w io.Writer, limit int, flushEvery time.Duration) *LineBuffer {
	b := &LineBuffer{w: w, limit: limit, pending: make([]byte, 0, limit), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushLoop(flushEvery)
	return b
}

func (b *LineBuffer) flushLoop(every time.Duration) {
	defer close(b.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.Flush() // a failing stdout has nowhere to report to
		}
	}
}

// Write writes what is pending and then p, at once.
func (b *LineBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.flushLocked(); err != nil {
		return 0, err
	}
	return b.w.Write(p)
}

// Buffered returns the writer whose lines wait for the next flush.
func (b *LineBuffer) Buffered() io.Writer { return bufferedLines{b} }

type bufferedLines struct{ b *LineBuffer }

func (l bufferedLines) Write(p []byte) (int, error) {
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
		return b.w.Write(p)
	}
	if len(b.pending)+len(p) > b.limit {
		if err := b.flushLocked(); err != nil {
			return 0, err
		}
	}
	b.pending = append(b.pending, p...)
	return len(p), nil
}

// Flush writes what is pending.
func (b *LineBuffer) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flushLocked()
}

func (b *LineBuffer) flushLocked() error {
	if len(b.pending) == 0 {
		return nil
	}
	_, err := b.w.Write(b.pending)
	b.pending = b.pending[:0]
	return err
}

// Close stops the periodic flush and writes what is pending.
func (b *LineBuffer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	return b.Flush()
}
