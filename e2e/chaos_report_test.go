package e2e

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testamqp"
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
	BeforeFaults chaosCounts               `json:"before_faults"`
	Windows      []chaosWindow             `json:"windows"`
	DrainSeconds float64                   `json:"drain_seconds"` // from the end of the load until every order was processed
	Drained      bool                      `json:"drained"`
	Services     map[string]string         `json:"services"`
	Audit        chaosAudit                `json:"audit"`
	Checks       []chaosCheck              `json:"checks"`
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
func warnings(p *proc) []logLine {
	var out []logLine
	for _, rec := range p.logs.Records() {
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

// waitDrained waits until every order in the database is processed and the
// outbox is empty, up to limit; it returns how long that took.
func waitDrained(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) (float64, bool) {
	start := time.Now()
	for {
		var unprocessed, unforwarded int
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM orders WHERE processed_at IS NULL),
			(SELECT count(*) FROM outbox_messages WHERE NOT acked)`).Scan(&unprocessed, &unforwarded)
		if err == nil && unprocessed == 0 && unforwarded == 0 {
			return time.Since(start).Seconds(), true
		}
		if time.Since(start) > limit || !sleepCtx(ctx, 200*time.Millisecond) {
			return time.Since(start).Seconds(), false
		}
	}
}

// servicesBack reports, for each service and process, "ok" or what is wrong.
func (r *chaosRun) servicesBack(ctx context.Context) map[string]string {
	out := map[string]string{}
	// The API's readiness covers PostgreSQL and Redis (its breaker closed
	// again); it may take a second or two after the last fault.
	api := "not ready"
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		resp, err := r.sys.client.GetReadyWithResponse(ctx)
		switch {
		case err != nil:
			api = err.Error()
		case resp.JSON200 == nil:
			api = fmt.Sprintf("ready: %d", resp.StatusCode())
		case resp.JSON200.Status != "ok":
			api = fmt.Sprintf("ready: %s %v", resp.JSON200.Status, resp.JSON200.Optional)
		default:
			api = "ok"
		}
		if api == "ok" || !sleepCtx(ctx, 200*time.Millisecond) {
			break
		}
	}
	out["api (postgres, redis)"] = api
	for i, p := range r.workers {
		out[fmt.Sprintf("workers %d", i+1)] = workersReady(ctx, p)
	}
	out["rabbitmq"] = "ok"
	if conn, err := amqp091.Dial(testamqp.URL()); err != nil {
		out["rabbitmq"] = err.Error()
	} else {
		_ = conn.Close()
	}
	return out
}

func workersReady(ctx context.Context, p *proc) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr("workers http listening")+"/ready", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "ready: " + resp.Status
	}
	return "ok"
}

// chaosAudit compares what the clients were told with the database.
type chaosAudit struct {
	Created      int `json:"created_201"`
	Orders       int `json:"orders_in_database"`
	Missing      int `json:"missing"`                  // 201s whose order is not in the database
	Lost         int `json:"lost"`                     // 201s whose order was never processed
	Unprocessed  int `json:"unprocessed"`              // orders never processed, announced by a 201 or not
	Without201   int `json:"orders_without_201"`       // committed, but the client got no 201 (its answer was cut)
	EventsNotOne int `json:"orders_without_one_event"` // orders with other than one new_order event
	AppliedTwice int `json:"applied_twice"`            // orders with more than one task in the inbox
	NotApplied   int `json:"not_applied"`              // orders with no task in the inbox
	StrayInbox   int `json:"stray_inbox_rows"`         // inbox rows of no order's task
	LoggedTwice  int `json:"processed_logged_twice"`   // orders with two "order processed" lines
	Redelivered  int `json:"duplicate_tasks_ignored"`  // redelivered tasks the inbox absorbed
	DeadLetters  int `json:"dead_letters"`
	// Commit (created_at) to processed_at of the processed orders, and the
	// orders committed but not yet processed each second since the load
	// started, from the same columns.
	LatencyP50ms float64 `json:"commit_to_processed_p50_ms"`
	LatencyP99ms float64 `json:"commit_to_processed_p99_ms"`
	LatencyMaxms float64 `json:"commit_to_processed_max_ms"`
	Backlog      []int   `json:"backlog_per_second"`
	BacklogMax   int     `json:"backlog_max"`
}

// auditOrders checks every 201 and every order against the database: the
// order exists and is processed, it has one new_order event, and the inbox
// holds exactly one task for it (the task id derives from the event id).
func auditOrders(t *testing.T, pool *pgxpool.Pool, topo messaging.Topology, start time.Time, calls []chaosCall, workers []*proc) chaosAudit {
	t.Helper()
	ctx := context.Background()
	var a chaosAudit
	processed := map[uuid.UUID]bool{}
	var createdAt, processedAt []time.Time
	var latencies []float64
	rows, err := pool.Query(ctx, "SELECT id, created_at, processed_at FROM orders")
	require.NoError(t, err)
	for rows.Next() {
		var id uuid.UUID
		var created time.Time
		var done *time.Time
		require.NoError(t, rows.Scan(&id, &created, &done))
		processed[id] = done != nil
		createdAt = append(createdAt, created)
		if done == nil {
			a.Unprocessed++
			continue
		}
		processedAt = append(processedAt, *done)
		latencies = append(latencies, float64(done.Sub(created).Microseconds())/1000)
	}
	require.NoError(t, rows.Err())
	a.Orders = len(processed)
	if n := len(latencies); n > 0 {
		slices.Sort(latencies)
		a.LatencyP50ms, a.LatencyP99ms, a.LatencyMaxms = latencies[n/2], latencies[(n-1)*99/100], latencies[n-1]
	}
	a.Backlog = backlog(start, createdAt, processedAt)
	if len(a.Backlog) > 0 {
		a.BacklogMax = slices.Max(a.Backlog)
	}

	announced := map[uuid.UUID]bool{}
	for _, c := range calls {
		if c.op != opCreate || c.status != http.StatusCreated {
			continue
		}
		a.Created++
		announced[c.order] = true
		switch done, ok := processed[c.order]; {
		case !ok:
			a.Missing++
		case !done:
			a.Lost++
		}
	}
	for id := range processed {
		if !announced[id] {
			a.Without201++
		}
	}

	inbox := map[string]bool{}
	rows, err = pool.Query(ctx, "SELECT message_id FROM processed_messages WHERE handler = $1", messaging.ProcessOrderHandler)
	require.NoError(t, err)
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		inbox[id] = true
	}
	require.NoError(t, rows.Err())
	eventsOf := map[uuid.UUID]int{}
	applied := map[uuid.UUID]int{}
	// Each outbox row is Watermill's forwarder envelope around the event.
	rows, err = pool.Query(ctx, `SELECT payload->>'payload' FROM outbox_messages WHERE payload->>'destination_topic' = $1`, events.TopicNewOrder)
	require.NoError(t, err)
	for rows.Next() {
		var encoded string
		require.NoError(t, rows.Scan(&encoded))
		payload, err := base64.StdEncoding.DecodeString(encoded)
		require.NoError(t, err)
		event, err := events.DecodeHead(message.NewMessage("", payload))
		require.NoError(t, err)
		eventsOf[event.OrderID]++
		task, err := events.NewProcessOrderTask(event, "")
		require.NoError(t, err)
		if inbox[task.UUID] {
			applied[event.OrderID]++
			delete(inbox, task.UUID)
		}
	}
	require.NoError(t, rows.Err())
	a.StrayInbox = len(inbox)
	for id := range processed {
		if eventsOf[id] != 1 {
			a.EventsNotOne++
		}
		switch {
		case applied[id] > 1:
			a.AppliedTwice++
		case applied[id] == 0:
			a.NotApplied++
		}
	}

	logged := map[string]int{}
	for _, p := range workers {
		for _, rec := range p.logs.Find("order processed") {
			id, _ := rec["order_id"].(string)
			logged[id]++
		}
		a.Redelivered += len(p.logs.Find("duplicate task ignored"))
	}
	for _, n := range logged {
		if n > 1 {
			a.LoggedTwice++
		}
	}
	a.DeadLetters = testamqp.QueueDepth(t, topo.Name(events.TopicDeadLetters))
	return a
}

// backlog counts, each second from start until the last order was
// processed, the orders committed and not yet processed.
func backlog(start time.Time, created, processed []time.Time) []int {
	slices.SortFunc(created, time.Time.Compare)
	slices.SortFunc(processed, time.Time.Compare)
	var out []int
	for at, c, p := start, 0, 0; len(processed) > 0 && !at.After(processed[len(processed)-1].Add(time.Second)); at = at.Add(time.Second) {
		for c < len(created) && !created[c].After(at) {
			c++
		}
		for p < len(processed) && !processed[p].After(at) {
			p++
		}
		out = append(out, c-p)
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

// write stores the result as chaos-<time>-<plan>.json and chaos-latest-<plan>.json in dir.
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
	}
	return name, nil
}
