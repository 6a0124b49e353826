// Package logging builds the processes' logger: one record per line, as
// JSON for machines or as key=value text for people, with the same fields
// either way, and names the services a process talks to without their
// credentials.
package logging

import (
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/mattn/go-isatty"

	"github.com/ordersvc/orders/internal/telemetry"
)

// Formats of LOG_FORMAT. Auto (empty) is text on a terminal, so that a
// person running the process reads lines rather than JSON, and JSON
// everywhere else, for the log collector.
const (
	FormatAuto = ""
	FormatJSON = "json"
	FormatText = "text"
)

// New returns the logger of a process writing to w at level, in format
// (FormatAuto, FormatJSON or FormatText). Records logged with a context
// that carries a span get its trace_id and span_id.
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: sameInBoth}
	var h slog.Handler
	if format == FormatText || format == FormatAuto && isTerminal(w) {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(telemetry.LogHandler{Handler: h})
}

// Resolve turns FormatAuto into the format New would choose for w, for a
// process that wraps w (in a buffer, say) before it makes its loggers.
func Resolve(w io.Writer, format string) string {
	if format != FormatAuto {
		return format
	}
	if isTerminal(w) {
		return FormatText
	}
	return FormatJSON
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// sameInBoth writes values the way a person reads them, in both formats:
// durations as "1.5s" (the JSON handler would write nanoseconds, the text
// handler "1.5s"), and Watermill's trace level as TRACE rather than DEBUG-4.
// The level goes out as a string in every record: left as a slog.Level, the
// JSON handler would encode it through encoding/json, on every line.
func sameInBoth(groups []string, a slog.Attr) slog.Attr {
	switch {
	case a.Value.Kind() == slog.KindDuration:
		return slog.String(a.Key, a.Value.Duration().String())
	case len(groups) == 0 && a.Key == slog.LevelKey:
		if l, ok := a.Value.Any().(slog.Level); ok {
			if l == watermill.LevelTrace {
				return slog.String(a.Key, "TRACE")
			}
			return slog.String(a.Key, l.String())
		}
	}
	return a
}

// Endpoint is where rawURL points (scheme, host and path), for a log line:
// the user, the password and the query (which may carry a password too)
// are left out. A comma-separated list of URLs gives a list of endpoints.
func Endpoint(rawURL string) string {
	var out []string
	for part := range strings.SplitSeq(rawURL, ",") {
		u, err := url.Parse(strings.TrimSpace(part))
		if err != nil {
			out = append(out, "<unparsable>")
			continue
		}
		out = append(out, (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String())
	}
	return strings.Join(out, ",")
}
