package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/internal/process"
	"github.com/ordersvc/orders/internal/testkit/proc"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testhttp"
)

// TestRabbitMQOutageUnderLoadIsQuiet: orders keep coming while the broker
// is down for 10 s. start_processing must not spin on events it cannot hand
// on (redelivering them at once while its task publisher is still
// reconnecting): a handler holding an event retries it on the backoff
// schedule, so each makes at most log2(elapsed/backoff + 1) + 1 failed
// attempts; nothing is dead-lettered because the broker went away, and every
// order is processed once.
func TestRabbitMQOutageUnderLoadIsQuiet(t *testing.T) {
	const handlers, backoff = 128, 200 * time.Millisecond // the defaults
	topo := testamqp.Outage(t)
	sys := newSystem(t, testdb.New(t), topo, map[string]string{
		"RATE_LIMIT_ENABLED":           "false",
		"START_PROCESSING_CONCURRENCY": strconv.Itoa(handlers),
		"HANDLER_RETRY_BACKOFF":        backoff.String(),
	})
	auth := sys.login()
	pool := openPool(t, sys.dbURL)
	metricsURL := sys.workers.URL(process.WorkersHTTPAddr) + "/metrics"

	load := startLoad(t, sys.client, auth, 100)
	_, ok := sys.workers.Logs().WaitFor("order processed", 30*time.Second)
	require.True(t, ok)
	time.Sleep(time.Second)
	logStart := len(sys.workers.Logs().String())
	errorsBefore := testhttp.Metric(testhttp.Get(t, metricsURL), `orders_handler_attempts_total{handler="start_processing",outcome="error"}`)

	testamqp.Stop(t)
	stopped := time.Now()
	time.Sleep(10 * time.Second)
	testamqp.Start(t)
	time.Sleep(5 * time.Second) // orders keep coming after the outage
	ids := load.stop()
	waitAllProcessed(t, pool, ids, 180*time.Second)
	elapsed := time.Since(stopped)
	assertProcessedOnce(t, sys, pool, ids)

	body := testhttp.Get(t, metricsURL)
	failed := testhttp.Metric(body, `orders_handler_attempts_total{handler="start_processing",outcome="error"}`) - errorsBefore
	logs := sys.workers.Logs().String()[logStart:]
	lines := logLines(logs)
	publishFailures := lines.count("Cannot publish messages") // the router's line for a produced message it could not send
	t.Logf("%d orders; start_processing failed attempts: %.0f; router publish failures: %d; retries: %.0f; "+
		"from the stop to every order processed: %s, %d log lines (%d warn, %d error), %d bytes; busiest second: %d error lines",
		len(ids), failed, publishFailures, testhttp.Metric(body, "orders_handler_retries_total"), elapsed.Round(time.Second),
		lines.total, lines.byLevel["WARN"], lines.byLevel["ERROR"], len(logs), lines.busiestErrorSecond())
	t.Logf("most frequent log lines: %v", lines.top(8))
	bound := handlers * (int(math.Log2(float64(elapsed/backoff)+1)) + 1)
	require.LessOrEqual(t, failed, float64(bound), "failed attempts beyond what the backoff allows %d handlers in %s", handlers, elapsed)
	require.LessOrEqual(t, publishFailures, bound, "a task that cannot be published is retried with backoff, not redelivered at once")
	require.Zero(t, testhttp.Metric(body, `orders_dead_lettered_total{handler="start_processing"}`), "no event is dead-lettered because the broker went away")
}

// TestTaskRetriesFollowTheBackoffWhileTheDatabaseIsDown: a task whose
// database is unreachable is retried after HANDLER_RETRY_BACKOFF, then twice
// as long each time, every retry counted; once the database is back the
// task completes at its next attempt, not after a longer sleep.
//
// The outage is the test's own database refusing connections (its sessions
// terminated, as a server shutdown terminates them, and new ones refused),
// not a stop of the shared server: the workers see the same failures, and
// other tests keep their PostgreSQL.
func TestTaskRetriesFollowTheBackoffWhileTheDatabaseIsDown(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	dbURL := testdb.New(t)
	// Retries caused by an outage are logged at debug (the outage itself
	// once at warn), and the waits are read from those lines.
	sys := newSystem(t, dbURL, topo, map[string]string{"HANDLER_MAX_RETRIES": "5", "HANDLER_RETRY_BACKOFF": "200ms", "LOG_LEVEL": "debug"})
	auth := sys.login()
	pool := openPool(t, dbURL)
	resp, err := sys.client.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode(), string(resp.Body))
	orderID := resp.JSON201.Id
	waitAllProcessed(t, pool, []uuid.UUID{orderID}, 30*time.Second)

	// A second task for the order (another event id) meets the database down.
	task, err := events.NewProcessOrderTask(events.Head{ID: uuid.Must(uuid.NewV7()), OrderID: orderID}, "")
	require.NoError(t, err)
	pub, err := amqp.NewPublisher(topo.Tasks(1), watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	reopen := testdb.RefuseConnections(t, dbURL)
	require.NoError(t, pub.Publish(events.TopicProcessOrder, task))

	const retriesBeforeRestore = 4
	var waits []time.Duration
	require.Eventually(t, func() bool {
		waits = retryWaits(sys.workers, task.UUID)
		return len(waits) >= retriesBeforeRestore
	}, 30*time.Second, 10*time.Millisecond, "retries logged: %v", waits)
	reopen()
	restored := time.Now()
	require.Eventually(t, func() bool {
		for _, rec := range sys.workers.Logs().Find("order processed") {
			if rec["message_id"] == task.UUID {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "the task is done at its next attempt")
	took := time.Since(restored)

	ms := time.Millisecond
	require.Equal(t, []time.Duration{200 * ms, 400 * ms, 800 * ms, 1600 * ms}, retryWaits(sys.workers, task.UUID),
		"HANDLER_RETRY_BACKOFF, doubling")
	require.Less(t, took, 1600*ms+time.Second, "done after the wait in progress, no longer")
	body := testhttp.Get(t, sys.workers.URL(process.WorkersHTTPAddr)+"/metrics")
	require.InDelta(t, retriesBeforeRestore, testhttp.Metric(body, "orders_handler_retries_total"), 0, "every retry counted, the first included")
	require.InDelta(t, retriesBeforeRestore, testhttp.Metric(body, `orders_handler_attempts_total{handler="process_order",outcome="error"}`), 0)
	require.NotRegexp(t, `orders_dead_lettered_total\{[^}]*\} [1-9]`, body)
	for _, rec := range sys.workers.Logs().Find("handler failed, retrying") {
		require.Equal(t, "DEBUG", rec["level"], "a retry an outage causes is a debug line")
	}
	require.NotEmpty(t, sys.workers.Logs().Find("PostgreSQL unavailable: requests that need it answer 503 until it is back"))
}

// retryWaits lists the waits the workers logged before each retry of a message.
func retryWaits(p *proc.Proc, messageID string) []time.Duration {
	var waits []time.Duration
	for _, rec := range p.Logs().Find("handler failed, retrying") {
		wait, _ := rec["wait"].(string)
		if d, err := time.ParseDuration(wait); err == nil && rec["message_id"] == messageID {
			waits = append(waits, d)
		}
	}
	return waits
}

// load creates orders through the API at a steady pace until stopped.
type load struct {
	done chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	ids  []uuid.UUID
}

func startLoad(t *testing.T, c *client.ClientWithResponses, auth client.RequestEditorFn, perSecond int) *load {
	t.Helper()
	l := &load{done: make(chan struct{})}
	l.wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(perSecond))
		defer tick.Stop()
		for {
			select {
			case <-l.done:
				return
			case <-tick.C:
			}
			resp, err := c.CreateOrderWithResponse(context.Background(), nil, oneItemOrder(), auth)
			// Reported, not required: FailNow must not run off the test goroutine.
			if err != nil {
				t.Errorf("create order: %v", err)
				return
			}
			if resp.StatusCode() != http.StatusCreated {
				t.Errorf("create order: %d %s", resp.StatusCode(), resp.Body)
				return
			}
			l.mu.Lock()
			l.ids = append(l.ids, resp.JSON201.Id)
			l.mu.Unlock()
		}
	})
	return l
}

// stop ends the load and returns the orders it created.
func (l *load) stop() []uuid.UUID {
	close(l.done)
	l.wg.Wait()
	return l.ids
}

// logSummary counts JSON log lines by level and message.
type logSummary struct {
	total     int
	byLevel   map[string]int
	byMsg     map[string]int
	errorsPer map[string]int // second -> error lines
}

func logLines(logs string) logSummary {
	s := logSummary{byLevel: map[string]int{}, byMsg: map[string]int{}, errorsPer: map[string]int{}}
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64*1024), 4<<20)
	for sc.Scan() {
		var rec struct {
			Time  string `json:"time"`
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		s.total++
		s.byLevel[rec.Level]++
		s.byMsg[rec.Msg]++
		if rec.Level == "ERROR" && len(rec.Time) >= 19 {
			s.errorsPer[rec.Time[:19]]++
		}
	}
	return s
}

func (s logSummary) count(msg string) int { return s.byMsg[msg] }

// top lists the n most frequent messages with their counts.
func (s logSummary) top(n int) []string {
	msgs := slices.SortedFunc(maps.Keys(s.byMsg), func(a, b string) int { return s.byMsg[b] - s.byMsg[a] })
	var out []string
	for _, m := range msgs[:min(n, len(msgs))] {
		out = append(out, fmt.Sprintf("%q x%d", m, s.byMsg[m]))
	}
	return out
}

func (s logSummary) busiestErrorSecond() int {
	most := 0
	for _, n := range s.errorsPer {
		most = max(most, n)
	}
	return most
}
