package e2e

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordersvc/orders/internal/plots"
	"github.com/ordersvc/orders/internal/testkit/proc"
)

// chaosResult is what a chaos run measured and checked; it is printed as a
// table and written as JSON.
type chaosResult struct {
	StartedAt    time.Time                 `json:"started_at"`
	Machine      string                    `json:"machine"`
	Plan         chaosPlan                 `json:"plan"`
	LoadSeconds  float64                   `json:"load_seconds"`
	CreateRate   float64                   `json:"achieved_create_rate"` // the pacer waits while every client is busy
	Requests     map[string]map[string]int `json:"requests"`             // by kind, then status ("none": no answer)
	PerSecond    chaosPerSecond            `json:"per_second"`
	BeforeFaults chaosCounts               `json:"before_faults"`
	Windows      []chaosWindow             `json:"windows"`
	DrainSeconds float64                   `json:"drain_seconds"` // from the end of the load until every order was processed
	Drained      bool                      `json:"drained"`
	Services     map[string]string         `json:"services"`
	Audit        chaosAudit                `json:"audit"`
	Checks       []chaosCheck              `json:"checks"`
}

// chaosPerSecond counts the requests by the second since the load started
// in which they ended, for the timeline.
type chaosPerSecond struct {
	Requests []int `json:"requests"` // answered
	HTTP5xx  []int `json:"http_5xx"`
	NoAnswer []int `json:"no_answer"`
}

func perSecond(start time.Time, calls []chaosCall) chaosPerSecond {
	var ps chaosPerSecond
	for _, c := range calls {
		if c.status == 0 {
			ps.NoAnswer = countAt(ps.NoAnswer, start, c.end)
			continue
		}
		ps.Requests = countAt(ps.Requests, start, c.end)
		if c.status >= 500 {
			ps.HTTP5xx = countAt(ps.HTTP5xx, start, c.end)
		}
	}
	// The series share the time axis: each as long as the longest.
	n := max(len(ps.Requests), len(ps.HTTP5xx), len(ps.NoAnswer))
	for _, s := range []*[]int{&ps.Requests, &ps.HTTP5xx, &ps.NoAnswer} {
		*s = append(*s, make([]int, n-len(*s))...)
	}
	return ps
}

// countAt adds one to the count of the second since start that holds at.
func countAt(counts []int, start, at time.Time) []int {
	i := max(0, int(at.Sub(start)/time.Second))
	if i >= len(counts) {
		counts = append(counts, make([]int, i+1-len(counts))...)
	}
	counts[i]++
	return counts
}

// chaosCounts are the requests in flight and the log lines written during a
// window. A request counts when it overlaps the window, from the fault until
// recoveryGrace after the service is back (or the next fault). A log line counts from the fault
// until the next one (or the end of the run): while the service is down, and
// after it is back, so a component that keeps complaining shows.
type chaosCounts struct {
	Requests int `json:"requests"`
	HTTP5xx  int `json:"http_5xx"`
	HTTP503  int `json:"http_503"`
	NoAnswer int `json:"no_answer"`
	// When the last 5xx (or unanswered) request of the window ended,
	// in seconds after the service was back; nil when there was none.
	LastFailure *float64 `json:"last_failure_after_back_s,omitempty"`
	Workers     logCount `json:"workers_log"`
	API         logCount `json:"api_log"` // beyond the access log's line per request
}

// logCount counts WARN and ERROR lines.
type logCount struct {
	Down  int            `json:"lines_while_down"`
	After int            `json:"lines_after_back"`
	ByMsg map[string]int `json:"by_message,omitempty"`
}

func (w chaosWindow) covers(c chaosCall) bool {
	return c.end.After(w.start) && c.start.Before(w.until)
}

// attribute counts the requests and log lines of each window; lines before
// the first fault count as "after" in the returned counts.
func (r *chaosRun) attribute(calls []chaosCall) ([]chaosWindow, chaosCounts) {
	windows := slices.Clone(r.windows)
	for i := range windows {
		w := &windows[i]
		for _, c := range calls {
			if !w.covers(c) {
				continue
			}
			w.Requests++
			switch {
			case c.status == 0:
				w.NoAnswer++
			case c.status == http.StatusServiceUnavailable:
				w.HTTP503++
				w.HTTP5xx++
			case c.status >= 500:
				w.HTTP5xx++
			}
			if after := c.end.Sub(w.up).Seconds(); (c.status == 0 || c.status >= 500) && (w.LastFailure == nil || after > *w.LastFailure) {
				w.LastFailure = &after
			}
		}
	}
	var before chaosCounts
	// A line belongs to the last fault that began before it.
	tally := func(line logLine, of func(*chaosCounts) *logCount) {
		i := len(windows) - 1
		for i >= 0 && windows[i].start.After(line.at) {
			i--
		}
		counts, down := &before, false
		if i >= 0 {
			counts, down = &windows[i].chaosCounts, line.at.Before(windows[i].up)
		}
		c := of(counts)
		if down {
			c.Down++
		} else {
			c.After++
		}
		c.ByMsg = increment(c.ByMsg, line.msg)
	}
	for _, p := range r.allWorkers() {
		for _, line := range warnings(p) {
			tally(line, func(c *chaosCounts) *logCount { return &c.Workers })
		}
	}
	for _, line := range warnings(r.sys.api) {
		if line.msg != "request" { // the access log: one line per request, counted as requests
			tally(line, func(c *chaosCounts) *logCount { return &c.API })
		}
	}
	return windows, before
}

type logLine struct {
	at  time.Time
	msg string
}

// warnings are a process's log lines at WARN or ERROR.
func warnings(p *proc.Proc) []logLine {
	var out []logLine
	for _, rec := range p.Logs().Records() {
		if level, _ := rec["level"].(string); level != "WARN" && level != "ERROR" {
			continue
		}
		stamp, _ := rec["time"].(string)
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil {
			continue
		}
		msg, _ := rec["msg"].(string)
		out = append(out, logLine{at: at, msg: msg})
	}
	return out
}

func increment(m map[string]int, key string) map[string]int {
	if m == nil {
		m = map[string]int{}
	}
	m[key]++
	return m
}

func countStatuses(calls []chaosCall) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, c := range calls {
		status := "none"
		if c.status != 0 {
			status = strconv.Itoa(c.status)
		}
		out[c.op] = increment(out[c.op], status)
	}
	return out
}

// chaosCheck is one promise of the run, kept or not.
type chaosCheck struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	Got  string `json:"got"`
}

func (res *chaosResult) check(calls []chaosCall, windows []chaosWindow) []chaosCheck {
	a := res.Audit
	var outside5xx, inside503, insideOther, unsignalled, noAnswer, unexpected int
	var unexpectedSeen []string
	for _, c := range calls {
		inPostgres := slices.ContainsFunc(windows, func(w chaosWindow) bool { return w.kind == faultPostgres && w.covers(c) })
		switch {
		case c.status == 0:
			noAnswer++
		case c.status >= 500 && !inPostgres:
			outside5xx++
		case c.status == http.StatusServiceUnavailable:
			inside503++
			if !c.signalled {
				unsignalled++
			}
		case c.status >= 500:
			insideOther++
		case c.status != expectedStatus[c.op]:
			unexpected++
			if len(unexpectedSeen) < 5 {
				unexpectedSeen = append(unexpectedSeen, fmt.Sprintf("%s %d", c.op, c.status))
			}
		}
	}
	lastUp := 0.0
	if len(windows) > 0 {
		lastUp = windows[len(windows)-1].Up
	}
	var down []string
	for name, state := range res.Services {
		if state != "ok" {
			down = append(down, name+": "+state)
		}
	}
	slices.Sort(down)
	return []chaosCheck{
		{"every fault injected while the load ran", len(windows) == len(res.Plan.Faults) && lastUp < res.LoadSeconds,
			fmt.Sprintf("%d of %d faults, the last back at %.1fs, load ended at %.1fs", len(windows), len(res.Plan.Faults), lastUp, res.LoadSeconds)},
		{"creates answered 201", a.Created > 0, fmt.Sprintf("%d of %d", a.Created, res.Plan.Orders)},
		{"none lost: every 201's order processed", a.Lost == 0, fmt.Sprintf("%d lost", a.Lost)},
		{"no 201 without its order", a.Missing == 0, fmt.Sprintf("%d missing", a.Missing)},
		{"none applied twice: one task in the inbox per order", a.AppliedTwice == 0 && a.NotApplied == 0 && a.StrayInbox == 0,
			fmt.Sprintf("%d applied twice, %d not applied, %d stray inbox rows", a.AppliedTwice, a.NotApplied, a.StrayInbox)},
		{"one new_order event per order", a.EventsNotOne == 0, fmt.Sprintf("%d orders without exactly one", a.EventsNotOne)},
		{"order processed logged once per order", a.LoggedTwice == 0, fmt.Sprintf("%d orders logged twice", a.LoggedTwice)},
		{"no 5xx outside the PostgreSQL window", outside5xx == 0, fmt.Sprintf("%d", outside5xx)},
		{"only 503 inside the PostgreSQL window", insideOther == 0, fmt.Sprintf("%d 503, %d other 5xx", inside503, insideOther)},
		{"every 503 with Retry-After and a problem body", unsignalled == 0, fmt.Sprintf("%d without", unsignalled)},
		{"every request answered", noAnswer == 0, fmt.Sprintf("%d without an answer", noAnswer)},
		{"no other unexpected status", unexpected == 0, fmt.Sprintf("%d %v", unexpected, unexpectedSeen)},
		{"the backlog drained", res.Drained && a.Unprocessed == 0, fmt.Sprintf("%d unprocessed after %.1fs", a.Unprocessed, res.DrainSeconds)},
		{"no dead letters", a.DeadLetters == 0, fmt.Sprintf("%d", a.DeadLetters)},
		{"every service back", len(down) == 0, strings.Join(down, "; ")},
	}
}

// table renders the result for people.
func (res *chaosResult) table() string {
	var b strings.Builder
	p := res.Plan
	fmt.Fprintf(&b, "chaos run (%s): %d creates paced at %.0f/s (achieved %.0f/s) from %d clients, reads at %.0f/s from %d readers, load %.1fs\n",
		p.Name, p.Orders, p.CreateRate, res.CreateRate, p.CreateClients, p.ReadRate, p.Readers, res.LoadSeconds)
	for _, op := range []string{opCreate, opGet, opPatch, opList} {
		fmt.Fprintf(&b, "  %-6s %s\n", op, formatCounts(res.Requests[op]))
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "fault (seconds since the load started)\tstart\tdown\tback\trequests\t5xx\t503\tno answer\tlast failure after back\tworkers warn/error lines: down, after\tapi: down, after\t")
	fmt.Fprintf(tw, "before the faults\t\t\t\t\t\t\t\t\t-, %d\t-, %d\t\n", res.BeforeFaults.Workers.After, res.BeforeFaults.API.After)
	for _, w := range res.Windows {
		last := "-"
		if w.LastFailure != nil {
			last = fmt.Sprintf("%+.1f", *w.LastFailure)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%s\t%d, %d\t%d, %d\t\n", w.Fault, w.Start, w.Down, w.Up,
			w.Requests, w.HTTP5xx, w.HTTP503, w.NoAnswer, last, w.Workers.Down, w.Workers.After, w.API.Down, w.API.After)
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "warn/error log lines by message:\n")
	for _, w := range append([]chaosWindow{{Fault: "before the faults", chaosCounts: res.BeforeFaults}}, res.Windows...) {
		for _, c := range []struct {
			process string
			count   logCount
		}{{"workers", w.Workers}, {"api", w.API}} {
			if len(c.count.ByMsg) > 0 {
				fmt.Fprintf(&b, "  %s, %s: %s\n", w.Fault, c.process, formatCounts(c.count.ByMsg))
			}
		}
	}
	a := res.Audit
	fmt.Fprintf(&b, "orders: %d 201s, %d in the database (%d without a 201), %d missing, %d lost, %d applied twice, %d not applied; %d redelivered tasks absorbed by the inbox; %d dead letters\n",
		a.Created, a.Orders, a.Without201, a.Missing, a.Lost, a.AppliedTwice, a.NotApplied, a.Redelivered, a.DeadLetters)
	fmt.Fprintf(&b, "commit -> processed: p50 %.0f ms, p99 %.0f ms, max %.0f ms; orders waiting at most %d; backlog drained: %t, %.1fs after the load ended\n",
		a.LatencyP50ms, a.LatencyP99ms, a.LatencyMaxms, a.BacklogMax, res.Drained, res.DrainSeconds)
	fmt.Fprintf(&b, "orders waiting, each second: %v\n", a.Backlog)
	fmt.Fprintf(&b, "services: %s\n", formatStates(res.Services))
	fmt.Fprintln(&b, "checks:")
	for _, c := range res.Checks {
		verdict := "ok  "
		if !c.OK {
			verdict = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %s (%s)\n", verdict, c.Name, c.Got)
	}
	return b.String()
}

// formatCounts lists counts most first: "201 3540, 503 60".
func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int { return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y)) })
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(keys) == 0 {
		return "-"
	}
	return strings.Join(keys, ", ")
}

func formatStates(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		keys[i] = k + " " + m[k]
	}
	return strings.Join(keys, ", ")
}

// write stores the result as chaos-<time>-<plan>.json and
// chaos-latest-<plan>.json in dir, each with its timeline next to it (.svg).
func (res *chaosResult) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, fmt.Sprintf("chaos-%s-%s.json", res.StartedAt.Format("20060102T150405Z"), res.Plan.Name))
	for _, path := range []string{name, filepath.Join(dir, "chaos-latest-"+res.Plan.Name+".json")} {
		if err := os.WriteFile(path, b, 0o644); err != nil { //nolint:gosec // results are meant to be read
			return "", err
		}
		if _, err := plots.WriteNextTo(path); err != nil {
			return "", err
		}
	}
	return name, nil
}
