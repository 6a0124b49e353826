package e2e

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/testamqp"
	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/internal/testkit/testlog"
)

// maxStartStopLines is what one start and stop of a process may write at
// LOG_LEVEL=info: a screenful.
const maxStartStopLines = 30

// logEnv is both processes' environment at LOG_LEVEL=info with the default
// concurrency (128 + 128 subscribers in the workers), on the database and
// the RabbitMQ namespace given.
func logEnv(dbURL string, topo messaging.Topology, format string) map[string]string {
	return map[string]string{
		"DATABASE_URL":      dbURL,
		"AMQP_URL":          topo.URL,
		"AMQP_NAMESPACE":    topo.Namespace,
		"REDIS_KEY_PREFIX":  topo.Namespace,
		"JWT_SECRET":        "e2e-secret-0123456789abcdef-0123456789",
		"HTTP_ADDR":         "127.0.0.1:0",
		"WORKERS_HTTP_ADDR": "127.0.0.1:0",
		"LOG_LEVEL":         "info",
		"LOG_FORMAT":        format,
	}
}

// startAndStop starts binary, stops it with SIGTERM once it is ready and
// has logged its summary line, and returns its log.
func startAndStop(t *testing.T, binary string, env map[string]string, summary string) *testlog.Sink {
	t.Helper()
	p := startProc(t, binary, env)
	require.Eventually(t, func() bool { return len(p.Logs().Find(summary)) > 0 }, 10*time.Second, 10*time.Millisecond,
		"%s never logged %q:\n%s", binary, summary, p.Log())
	require.NoError(t, p.Stop(60*time.Second), p.Log())
	return p.Logs()
}

// TestStartAndStopLogAScreenful: a first start (the database created and
// migrated) and a SIGTERM write at most a screenful per process, every line
// a record; the workers' 256 subscribers say nothing at info, and one line
// names what each process runs and depends on, with no credentials.
func TestStartAndStopLogAScreenful(t *testing.T) {
	t.Parallel()
	env := logEnv(testdb.NewEmpty(t), testamqp.Namespace(t), "json")

	for _, proc := range []struct{ binary, summary string }{
		{"server", "api running"},
		{"workers", "workers running"},
	} {
		logs := startAndStop(t, proc.binary, env, proc.summary)
		lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
		t.Logf("%s: %d lines at info for a start and a stop", proc.binary, len(lines))
		require.LessOrEqual(t, len(lines), maxStartStopLines, logs.String())
		records := logs.Records()
		require.Len(t, records, len(lines), "every line is a log record:\n%s", logs.String())
		require.Equal(t, "stopped", records[len(records)-1]["msg"], logs.String())
		require.Len(t, logs.Find(proc.summary), 1)
		require.NotContains(t, logs.String(), "guest", "AMQP credentials in the log")
		require.NotContains(t, logs.String(), env["JWT_SECRET"])
	}
}

// TestWorkersSummaryNamesWhatTheyRun: the workers' start line lists the
// forwarders, the handler groups with their concurrency and every queue.
func TestWorkersSummaryNamesWhatTheyRun(t *testing.T) {
	t.Parallel()
	topo := testamqp.Namespace(t)
	logs := startAndStop(t, "workers", logEnv(testdb.New(t), topo, "json"), "workers running")
	summary := testlog.Flat(logs.Find("workers running")[0])
	require.Equal(t, "8", summary["forwarders.count"])
	require.Equal(t, "128", summary["handlers."+messaging.StartProcessingHandler])
	require.Equal(t, "1", summary["handlers."+messaging.StatusLogHandler])
	require.Equal(t, "128", summary["handlers."+messaging.ProcessOrderHandler])
	for _, r := range messaging.Routes {
		require.Contains(t, summary, "handlers."+r.Handler, "every route of the topology is named")
	}
	for _, q := range topo.Queues() {
		require.Contains(t, summary["queues"], q)
	}
	for _, x := range topo.Exchanges() {
		require.Contains(t, summary["forwarders.exchanges"], x)
	}
}

// TestLogFormatsCarryTheSameFields: each process, started and stopped with
// LOG_FORMAT=json and then with LOG_FORMAT=text, writes the same records
// with the same keys.
func TestLogFormatsCarryTheSameFields(t *testing.T) {
	t.Parallel()
	dbURL, topo := testdb.New(t), testamqp.Namespace(t)
	for _, proc := range []struct{ binary, summary string }{
		{"server", "api running"},
		{"workers", "workers running"},
	} {
		keys := map[string][]string{}
		for _, format := range []string{"json", "text"} {
			logs := startAndStop(t, proc.binary, logEnv(dbURL, topo, format), proc.summary)
			firstChar := logs.String()[0]
			require.Equal(t, format == "json", firstChar == '{', "%s with LOG_FORMAT=%s:\n%s", proc.binary, format, logs.String())
			var lines []string
			for _, rec := range logs.Records() {
				flat := testlog.Flat(rec)
				line := flat["level"] + " " + flat["msg"] + ":"
				for _, k := range slices.Sorted(maps.Keys(flat)) {
					line += " " + k
				}
				lines = append(lines, line)
			}
			require.NotEmpty(t, lines)
			keys[format] = lines
		}
		require.Equal(t, keys["json"], keys["text"], proc.binary)
	}
}
