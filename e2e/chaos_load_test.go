package e2e

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/internal/process"
)

// Request kinds of the chaos load and the status each expects.
const (
	opCreate = "create"
	opGet    = "get"
	opPatch  = "patch"
	opList   = "list"
)

var expectedStatus = map[string]int{opCreate: http.StatusCreated, opGet: http.StatusOK, opPatch: http.StatusOK, opList: http.StatusOK}

// chaosCall is one request of the load and how it ended.
type chaosCall struct {
	op         string
	start, end time.Time
	status     int    // 0: no answer
	err        string // why there was no answer, or why a 201 had no order
	signalled  bool   // a 503 with Retry-After and a problem+json body
	order      uuid.UUID
}

type chaosUser struct {
	id   int64
	auth client.RequestEditorFn
}

type chaosOrder struct {
	id   uuid.UUID
	user *chaosUser
}

// chaosLoad sends the run's requests and records every one of them.
type chaosLoad struct {
	api   client.ClientInterface
	users []*chaosUser

	mu      sync.Mutex
	calls   []chaosCall
	created []chaosOrder
}

// newChaosLoad registers n users, one per create client, on a client with
// enough idle connections for every client and reader.
func newChaosLoad(t *testing.T, sys *system, n int) *chaosLoad {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	api, err := client.NewClient(sys.api.URL(process.HTTPAddr),
		client.WithHTTPClient(&http.Client{Transport: tr, Timeout: 30 * time.Second}))
	require.NoError(t, err)
	l := &chaosLoad{api: api}
	for range n {
		id, auth := sys.newUser()
		l.users = append(l.users, &chaosUser{id: id, auth: auth})
	}
	return l
}

// run sends the plan's creates and, meanwhile, its reads; it returns when
// every create has been answered.
func (l *chaosLoad) run(ctx context.Context, p chaosPlan) {
	readCtx, stopReads := context.WithCancel(ctx)
	readsDone := make(chan struct{})
	go func() {
		defer close(readsDone)
		paced(readCtx, -1, p.ReadRate, p.Readers, l.read)
	}()
	paced(ctx, p.Orders, p.CreateRate, p.CreateClients, l.create)
	stopReads()
	<-readsDone
}

// paced hands out n tokens (until ctx ends when n < 0) at rate per second to
// workers goroutines, each token one call of fn, and returns once every call
// has returned. When every worker is busy the pacer waits: each client has at
// most one request in flight, and a slow API lowers the rate.
func paced(ctx context.Context, n int, rate float64, workers int, fn func(seq int)) {
	tokens := make(chan int, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for seq := range tokens {
				fn(seq)
			}
		})
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for seq := 0; (n < 0 || seq < n) && sleepUntil(ctx, tick.C); seq++ {
		select {
		case tokens <- seq:
		case <-ctx.Done():
		}
	}
	close(tokens)
	wg.Wait()
}

func sleepUntil(ctx context.Context, c <-chan time.Time) bool {
	select {
	case <-ctx.Done():
		return false
	case <-c:
		return true
	}
}

func (l *chaosLoad) create(seq int) {
	user := l.users[seq%len(l.users)]
	c := chaosCall{op: opCreate, start: time.Now()}
	resp, err := l.api.CreateOrder(context.Background(), nil, oneItemOrder(), user.auth)
	switch {
	case !c.answered(resp, err):
	case c.status != http.StatusCreated:
		discard(resp)
	default:
		parsed, err := client.ParseCreateOrderResponse(resp)
		switch {
		case err != nil:
			c.err = "201 body: " + err.Error()
		case parsed.JSON201 == nil:
			c.err = "201 without an order"
		default:
			c.order = parsed.JSON201.Id
			l.mu.Lock()
			l.created = append(l.created, chaosOrder{id: c.order, user: user})
			l.mu.Unlock()
		}
	}
	l.record(c)
}

// read does a GET, a PATCH (to PAID: a transition from PENDING, a no-op once
// PAID) or a list, in turn, on an order already created.
func (l *chaosLoad) read(seq int) {
	c := chaosCall{start: time.Now()}
	var (
		resp *http.Response
		err  error
	)
	c.op, resp, err = l.sendRead(seq)
	if c.answered(resp, err) {
		discard(resp)
	}
	l.record(c)
}

func (l *chaosLoad) sendRead(seq int) (string, *http.Response, error) {
	l.mu.Lock()
	var o chaosOrder
	if len(l.created) > 0 {
		o = l.created[rand.IntN(len(l.created))] //nolint:gosec // picking an order, not a secret
	}
	l.mu.Unlock()
	ctx := context.Background()
	switch {
	case o.user == nil || seq%3 == 0:
		user := l.users[seq%len(l.users)]
		limit := 50
		resp, err := l.api.ListUserOrders(ctx, user.id, &client.ListUserOrdersParams{Limit: &limit}, user.auth)
		return opList, resp, err
	case seq%3 == 1:
		resp, err := l.api.GetOrder(ctx, o.id, nil, o.user.auth)
		return opGet, resp, err
	default:
		resp, err := l.api.UpdateOrderStatus(ctx, o.id, nil, client.UpdateOrderStatusJSONRequestBody{Status: client.OrderStatusPAID}, o.user.auth)
		return opPatch, resp, err
	}
}

func discard(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// answered records the end of the call and its status; it reports whether
// an answer came (then the caller reads and closes the body).
func (c *chaosCall) answered(resp *http.Response, err error) bool {
	c.end = time.Now()
	if err != nil {
		c.err = err.Error()
		return false
	}
	c.status = resp.StatusCode
	c.signalled = resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" &&
		strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json")
	return true
}

func (l *chaosLoad) record(c chaosCall) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}
