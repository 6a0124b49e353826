package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testdb"
)

// TestPostgresRestart restarts a real PostgreSQL under load, twice: once as
// an operator's restart (stop in fast mode, start at once) and once with the
// server down for a second. The cluster is the test's own, so no other test
// notices. A client must be able to tell the outage from a bug: no 500 at
// all, every failure a 503 problem with Retry-After, /ready 503 while the
// database is down, every order a 201 announced still there afterwards, and
// the API back to 2xx by itself.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	cluster := testdb.NewCluster(t)
	ts := startQuietServer(t, map[string]string{"DATABASE_URL": cluster.URL("orders")})
	token, ids := seedOrders(t, ts, 20)
	load := startLoad(t, ts.URL, token, ids, 8)

	time.Sleep(500 * time.Millisecond)
	load.enter("restart")
	cluster.Stop()
	cluster.Start()
	time.Sleep(time.Second)
	load.enter("down")
	cluster.Stop()
	time.Sleep(time.Second)
	load.enter("back")
	cluster.Start()
	time.Sleep(1500 * time.Millisecond)
	load.stop()

	for _, phase := range []string{"steady", "restart", "down", "back"} {
		t.Logf("%-8s %s", phase, load.summary(phase))
	}
	require.Zero(t, load.count(func(r loadResult) bool { return r.status == http.StatusInternalServerError }), "a restart is an outage, not a bug: no 500")
	for _, r := range load.results() {
		if r.status != http.StatusServiceUnavailable || r.op == "ready" {
			continue
		}
		require.Equal(t, "application/problem+json", r.contentType, "%s", r.op)
		require.GreaterOrEqual(t, r.retryAfter, 1, "%s: 503 without Retry-After", r.op)
	}
	require.Positive(t, load.count(func(r loadResult) bool {
		return r.phase == "down" && r.op == "ready" && r.status == http.StatusServiceUnavailable
	}),
		"/ready never said 503 while PostgreSQL was down")
	last := load.tail(300 * time.Millisecond)
	require.NotEmpty(t, last)
	for _, r := range last {
		require.Less(t, r.status, 300, "%s still failing %s after the restart", r.op, time.Since(r.at))
	}
	// Every order the API said it created is there.
	created := load.created()
	require.NotEmpty(t, created)
	for _, id := range created {
		status, _ := load.get(id)
		require.Equal(t, http.StatusOK, status, "order %s answered 201 during the restart and is gone", id)
	}
}

// loadResult is one answer the load got.
type loadResult struct {
	at          time.Time
	phase, op   string
	status      int
	retryAfter  int // 0: no header
	contentType string
	created     uuid.UUID
}

// restartLoad sends creates and reads from several clients and /ready polls,
// recording each answer with the phase it was sent in.
type restartLoad struct {
	t        *testing.T
	base     string
	token    string
	ids      []uuid.UUID
	client   *http.Client
	current  atomic.Value // string
	done     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	recorded []loadResult
}

func startLoad(t *testing.T, base, token string, ids []uuid.UUID, clients int) *restartLoad {
	t.Helper()
	l := &restartLoad{t: t, base: base, token: token, ids: ids, done: make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients + 1}}}
	l.current.Store("steady")
	for range clients {
		l.loop(func() {
			if rand.IntN(2) == 0 { //nolint:gosec // load pattern, not security
				l.create()
			} else {
				l.read()
			}
		})
	}
	l.loop(func() {
		l.send("ready", http.MethodGet, "/ready", nil)
		time.Sleep(25 * time.Millisecond)
	})
	t.Cleanup(l.stop)
	return l
}

func (l *restartLoad) loop(step func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			select {
			case <-l.done:
				return
			default:
				step()
			}
		}
	}()
}

// enter names what happens to the database from now on.
func (l *restartLoad) enter(phase string) { l.current.Store(phase) }

func (l *restartLoad) stop() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

func (l *restartLoad) create() {
	body := `{"items":[{"product_id":1,"quantity":1,"price":9.99}]}`
	l.send("create", http.MethodPost, "/orders/", strings.NewReader(body))
}

func (l *restartLoad) read() {
	l.send("read", http.MethodGet, "/orders/"+l.ids[rand.IntN(len(l.ids))].String()+"/", nil) //nolint:gosec // load pattern
}

func (l *restartLoad) get(id uuid.UUID) (int, []byte) {
	req, err := http.NewRequest(http.MethodGet, l.base+"/orders/"+id.String()+"/", nil) //nolint:noctx // bounded by the client timeout
	require.NoError(l.t, err)
	req.Header.Set("Authorization", "Bearer "+l.token)
	resp, err := l.client.Do(req)
	require.NoError(l.t, err)
	defer resp.Body.Close() //nolint:errcheck // read below
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (l *restartLoad) send(op, method, path string, body io.Reader) {
	phase, _ := l.current.Load().(string)
	req, err := http.NewRequest(method, l.base+path, body) //nolint:noctx // bounded by the client timeout
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+l.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := l.client.Do(req)
	r := loadResult{at: time.Now(), phase: phase, op: op}
	if err != nil {
		r.status = -1 // no answer at all
	} else {
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		r.status = resp.StatusCode
		r.retryAfter, _ = strconv.Atoi(resp.Header.Get("Retry-After"))
		r.contentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if op == "create" && r.status == http.StatusCreated {
			if i := bytes.Index(b, []byte(`"id":"`)); i >= 0 && len(b) >= i+6+36 {
				r.created, _ = uuid.Parse(string(b[i+6 : i+6+36]))
			}
		}
	}
	l.mu.Lock()
	l.recorded = append(l.recorded, r)
	l.mu.Unlock()
}

func (l *restartLoad) results() []loadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loadResult(nil), l.recorded...)
}

func (l *restartLoad) count(match func(loadResult) bool) int {
	n := 0
	for _, r := range l.results() {
		if match(r) {
			n++
		}
	}
	return n
}

// tail is what the API answered during the last d of the run.
func (l *restartLoad) tail(d time.Duration) []loadResult {
	all := l.results()
	if len(all) == 0 {
		return nil
	}
	from := all[len(all)-1].at.Add(-d)
	var out []loadResult
	for _, r := range all {
		if r.at.After(from) {
			out = append(out, r)
		}
	}
	return out
}

func (l *restartLoad) created() []uuid.UUID {
	var out []uuid.UUID
	for _, r := range l.results() {
		if r.created != uuid.Nil {
			out = append(out, r.created)
		}
	}
	return out
}

// summary counts the answers of phase by operation and status.
func (l *restartLoad) summary(phase string) string {
	counts := map[string]int{}
	for _, r := range l.results() {
		if r.phase == phase {
			counts[fmt.Sprintf("%s:%d", r.op, r.status)]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, counts[k])
	}
	return strings.Join(parts, " ")
}
