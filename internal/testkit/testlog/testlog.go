// Package testlog captures the log lines of a process started in a test
// (through its run function or as a binary), in either LOG_FORMAT, so the
// test can wait for and inspect them.
package testlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sink is an io.Writer for a slog JSON or text handler. A JSON line is
// recorded as decoded (a group is a nested map); a text line as its
// key=value pairs, every value a string (a group is keys with dots).
type Sink struct {
	mu      sync.Mutex
	buf     strings.Builder
	partial []byte // the start of a line whose end has not been written yet
	records []map[string]any
	changed chan struct{}
}

// NewSink returns an empty Sink.
func NewSink() *Sink { return &Sink{changed: make(chan struct{})} }

// Write records each complete JSON line. The output of a process arrives
// through a pipe in chunks that may end in the middle of a line; that line is
// recorded once its end arrives.
func (s *Sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf.Write(p)
	lines := append(s.partial, p...)
	end := bytes.LastIndexByte(lines, '\n') + 1
	s.partial = bytes.Clone(lines[end:])
	sc := bufio.NewScanner(bytes.NewReader(lines[:end]))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil {
			s.records = append(s.records, rec)
		} else if rec, ok := parseText(sc.Text()); ok {
			s.records = append(s.records, rec)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// String returns everything written so far.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// Find returns the records whose "msg" is msg.
func (s *Sink) Find(msg string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, r := range s.records {
		if r["msg"] == msg {
			out = append(out, r)
		}
	}
	return out
}

// Records returns every record so far, in the order written.
func (s *Sink) Records() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// WaitFor returns the first record whose "msg" is msg, waiting up to timeout.
func (s *Sink) WaitFor(msg string, timeout time.Duration) (map[string]any, bool) {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		changed := s.changed
		s.mu.Unlock()
		if found := s.Find(msg); len(found) > 0 {
			return found[0], true
		}
		select {
		case <-changed:
		case <-deadline:
			return nil, false
		}
	}
}

// parseText reads a line of slog's TextHandler: key=value pairs separated by
// spaces, a value quoted (Go syntax) when it holds a space, a quote or an
// equals sign. A line that is not such pairs, starting with time or level,
// is not a record.
func parseText(line string) (map[string]any, bool) {
	rec := map[string]any{}
	for rest := strings.TrimSpace(line); rest != ""; rest = strings.TrimLeft(rest, " ") {
		key, value, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return nil, false
		}
		if strings.HasPrefix(value, `"`) {
			quoted, err := strconv.QuotedPrefix(value)
			if err != nil {
				return nil, false
			}
			rest = value[len(quoted):]
			value, _ = strconv.Unquote(quoted)
		} else {
			value, rest, _ = strings.Cut(value, " ")
		}
		rec[key] = value
	}
	_, hasTime := rec["time"]
	_, hasLevel := rec["level"]
	return rec, hasTime || hasLevel
}

// Flat is a record as a text line carries it: a group's keys joined with
// dots, every value printed (numbers without exponent). A JSON record and
// the text record of the same log call are equal once flat, but for the
// time's precision.
func Flat(rec map[string]any) map[string]string {
	out := map[string]string{}
	flat("", rec, out)
	return out
}

func flat(prefix string, rec map[string]any, out map[string]string) {
	for k, v := range rec {
		switch v := v.(type) {
		case map[string]any:
			flat(prefix+k+".", v, out)
		case float64:
			out[prefix+k] = strconv.FormatFloat(v, 'f', -1, 64)
		default:
			out[prefix+k] = fmt.Sprint(v)
		}
	}
}
