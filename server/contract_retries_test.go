package main

import (
	"context"
	"crypto/sha256"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/client"
	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/testkit/testredis"
	"github.com/ordersvc/orders/money"
)

// withKey sends an Idempotency-Key.
func withKey(key string) *client.CreateOrderParams {
	return &client.CreateOrderParams{IdempotencyKey: &key}
}

// createWithKey sends a raw JSON create with key, for bodies the typed
// client would spell one way only.
func createWithKey(t *testing.T, s *contractServer, u testUser, key, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/orders/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.Token)
	req.Header.Set("Idempotency-Key", key)
	return s.send(t, req)
}

// ordersOf lists u's orders (at most 100).
func ordersOf(t *testing.T, s *contractServer, u testUser) []client.Order {
	t.Helper()
	limit := 100
	r, err := s.Client.ListUserOrdersWithResponse(t.Context(), u.ID, &client.ListUserOrdersParams{Limit: &limit}, u.auth())
	require.Equal(t, 200, statusOf(t, r, err), "%s", r.Body)
	return *r.JSON200
}

// outboxRows counts the events written to the server's outbox (no workers
// run in these tests, so none was forwarded).
func outboxRows(t *testing.T, dbURL string) int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	defer conn.Close(context.Background()) //nolint:errcheck // the test is done with it
	backlog, err := db.New(conn).OutboxBacklog(t.Context())
	require.NoError(t, err)
	return backlog.Pending
}

func TestCreateOrderWithIdempotencyKey(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice, bob := newUser(t, s), newUser(t, s)
	key := uuid.NewString()
	body := client.CreateOrderRequest{Items: []client.OrderItem{item(42, 2, "2.9"), item(7, 1, "10.05")}}

	first, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 201, statusOf(t, first, err), "%s", first.Body)
	require.Empty(t, first.HTTPResponse.Header.Values("Idempotent-Replayed"), "the first answer is no replay")
	require.Equal(t, `"1"`, first.HTTPResponse.Header.Get("ETag"))
	require.Equal(t, int64(1), first.JSON201.Version)
	require.Equal(t, "/orders/"+first.JSON201.Id.String()+"/", first.HTTPResponse.Header.Get("Location"))

	second, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 201, statusOf(t, second, err), "%s", second.Body)
	require.Equal(t, "true", second.HTTPResponse.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(first.Body), string(second.Body), "the stored answer, byte for byte")
	for _, h := range []string{"ETag", "Location"} {
		require.Equal(t, first.HTTPResponse.Header.Get(h), second.HTTPResponse.Header.Get(h), h)
	}
	require.Len(t, ordersOf(t, s, alice), 1, "one order")
	require.EqualValues(t, 1, outboxRows(t, s.DBURL), "one new_order event")

	t.Run("the same JSON spelled differently is the same request", func(t *testing.T) {
		for _, spelled := range []string{
			`{"items":[{"product_id":42,"quantity":2,"price":2.9},{"product_id":7,"quantity":1,"price":10.05}]}`,
			"{ \"items\" : [ {\"price\":2.90, \"quantity\":2, \"product_id\":42},\n {\"product_id\":7,\"quantity\":1,\"price\":1005e-2} ] }",
			`{"items":[{"product_id":42,"quantity":2,"price":2.9,"note":"ignored"},{"product_id":7,"quantity":1,"price":10.05}],"user_id":99}`,
			`{"\u0069tems":[{"product_id":42,"quantity":2,"price":2.9},{"product_id":7,"quantity":1,"price":10.05}]}`,
		} {
			r := createWithKey(t, s, alice, key, spelled)
			require.Equal(t, 201, r.Status, "%s: %s", spelled, r.Body)
			require.Equal(t, "true", r.Header.Get("Idempotent-Replayed"), spelled)
			require.Equal(t, string(first.Body), string(r.Body))
		}
		require.Len(t, ordersOf(t, s, alice), 1)
	})

	t.Run("the same key with another body is 422", func(t *testing.T) {
		other := client.CreateOrderRequest{Items: []client.OrderItem{item(42, 3, "2.9")}}
		r, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), other, alice.auth())
		require.Equal(t, 422, statusOf(t, r, err), "%s", r.Body)
		require.Equal(t, []string{"header.Idempotency-Key"}, fieldsOf(r.ApplicationproblemJSON422))
		require.Contains(t, (*r.ApplicationproblemJSON422.Errors)[0].Message, first.JSON201.Id.String())
		require.Len(t, ordersOf(t, s, alice), 1)
	})

	t.Run("another user's identical key is another request", func(t *testing.T) {
		r, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, bob.auth())
		require.Equal(t, 201, statusOf(t, r, err), "%s", r.Body)
		require.Empty(t, r.HTTPResponse.Header.Get("Idempotent-Replayed"))
		require.Equal(t, bob.ID, r.JSON201.UserId)
		require.Len(t, ordersOf(t, s, bob), 1)
	})

	t.Run("a refused request leaves the key free", func(t *testing.T) {
		fresh := uuid.NewString()
		bad := client.CreateOrderRequest{Items: []client.OrderItem{item(1, 0, "1")}}
		r, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(fresh), bad, bob.auth())
		require.Equal(t, 422, statusOf(t, r, err), "%s", r.Body)
		fixed := client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}
		r, err = s.Client.CreateOrderWithResponse(t.Context(), withKey(fresh), fixed, bob.auth())
		require.Equal(t, 201, statusOf(t, r, err), "%s", r.Body)
		require.Empty(t, r.HTTPResponse.Header.Get("Idempotent-Replayed"))
	})
}

func TestIdempotencyKeyFormat(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice := newUser(t, s)
	body := `{"items":[{"product_id":1,"quantity":1,"price":1}]}`
	for name, key := range map[string]string{
		"empty":       "",
		"too long":    strings.Repeat("k", 256),
		"not ASCII":   "clé",
		"tab":         "a\tb",
		"only spaces": "   ",
	} {
		t.Run(name, func(t *testing.T) {
			r := createWithKey(t, s, alice, key, body)
			require.Equal(t, 422, r.Status, "%s", r.Body)
			require.Contains(t, string(r.Body), "header.Idempotency-Key")
		})
	}
	t.Run("sent twice", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/orders/", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Add("Idempotency-Key", "one")
		req.Header.Add("Idempotency-Key", "two")
		r := s.send(t, req)
		require.Equal(t, 422, r.Status, "%s", r.Body)
	})
	t.Run("the longest and the widest", func(t *testing.T) {
		for _, key := range []string{strings.Repeat("~", 255), ` !"#$%&'()*+,-./09:;<=>?@AZ[\]^_az{|}~`} {
			r := createWithKey(t, s, alice, key, body)
			require.Equal(t, 201, r.Status, "%q: %s", key, r.Body)
		}
	})
}

func TestIdempotencyKeyRequired(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"IDEMPOTENCY_KEY_REQUIRED": "true"}, nil)
	alice := newUser(t, s)
	body := client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}

	r, err := s.Client.CreateOrderWithResponse(t.Context(), nil, body, alice.auth())
	require.Equal(t, 400, statusOf(t, r, err), "%s", r.Body)
	require.Equal(t, []string{"header.Idempotency-Key"}, fieldsOf(r.ApplicationproblemJSON400))
	require.Empty(t, ordersOf(t, s, alice))

	r, err = s.Client.CreateOrderWithResponse(t.Context(), withKey(uuid.NewString()), body, alice.auth())
	require.Equal(t, 201, statusOf(t, r, err), "%s", r.Body)
}

// TestConcurrentCreatesWithOneKey: 20 clients send the same create with one
// fresh key at once. One order and one event result; every answer is that
// order (first or replayed) or a 409 with Retry-After; none is a 5xx.
func TestConcurrentCreatesWithOneKey(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice := newUser(t, s)
	key := uuid.NewString()
	body := client.CreateOrderRequest{Items: []client.OrderItem{item(3, 3, "3.33")}}

	const n = 20
	answers := make([]*client.CreateOrderResponse, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			r, err := s.Client.CreateOrderWithResponse(context.Background(), withKey(key), body, alice.auth())
			if err != nil { // not require: off the test goroutine
				t.Errorf("POST %d: %v", i, err)
				return
			}
			answers[i] = r
		})
	}
	close(start)
	wg.Wait()

	var created, replays, inFlight int
	ids := map[uuid.UUID]bool{}
	for _, r := range answers {
		require.NotNil(t, r)
		switch r.StatusCode() {
		case 201:
			ids[r.JSON201.Id] = true
			if r.HTTPResponse.Header.Get("Idempotent-Replayed") == "true" {
				replays++
			} else {
				created++
			}
		case 409:
			inFlight++
			require.Equal(t, "1", r.HTTPResponse.Header.Get("Retry-After"))
		default:
			t.Errorf("answer %d: %s", r.StatusCode(), r.Body)
		}
	}
	t.Logf("%d created, %d replayed, %d told to retry", created, replays, inFlight)
	require.Equal(t, 1, created)
	require.Len(t, ids, 1, "every 201 is the one order")
	require.Len(t, ordersOf(t, s, alice), 1)
	require.EqualValues(t, 1, outboxRows(t, s.DBURL))
}

// holdKey creates an order with userID's key in a transaction it keeps
// open on the server's database, as a request still in flight would;
// release rolls it back.
func holdKey(t *testing.T, dbURL string, userID int64, key string) (release func()) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	require.NoError(t, err)
	tx, err := conn.Begin(t.Context())
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("another request"))
	res := db.New(tx).InsertOrderWithKey(t.Context(), []db.InsertOrderWithKeyParams{{
		ID: uuid.New(), UserID: userID, Items: []byte(`[]`), TotalPrice: money.MustParse("1"), CreatedAt: time.Now(),
		Key: key, Fingerprint: sum[:], Response: []byte(`{}`), ExpiresAt: time.Now().Add(time.Hour), LockTimeout: "1s",
	}})
	res.Exec(func(_ int, e error) { err = e })
	require.NoError(t, err)
	var once sync.Once
	release = func() {
		once.Do(func() {
			require.NoError(t, tx.Rollback(context.Background()))
			require.NoError(t, conn.Close(context.Background()))
		})
	}
	t.Cleanup(release)
	return release
}

func TestCreateOrderWhileTheKeyIsInFlight(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, nil, nil)
	alice := newUser(t, s)
	key := uuid.NewString()
	body := client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}
	release := holdKey(t, s.DBURL, alice.ID, key)

	began := time.Now()
	r, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 409, statusOf(t, r, err), "%s", r.Body)
	require.Less(t, time.Since(began), 3*time.Second, "a short wait, not a long block")
	require.Equal(t, "1", r.HTTPResponse.Header.Get("Retry-After"))
	require.Contains(t, *r.ApplicationproblemJSON409.Detail, "Idempotency-Key")
	require.Empty(t, ordersOf(t, s, alice))

	release() // the first request failed: the retry creates the order
	r, err = s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 201, statusOf(t, r, err), "%s", r.Body)
	require.Empty(t, r.HTTPResponse.Header.Get("Idempotent-Replayed"))
}

func TestIdempotencyKeysExpire(t *testing.T) {
	t.Parallel()
	s := startContractServer(t, map[string]string{"IDEMPOTENCY_KEY_TTL": "1s"}, nil)
	alice := newUser(t, s)
	key := uuid.NewString()
	body := client.CreateOrderRequest{Items: []client.OrderItem{item(1, 1, "1")}}

	first, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 201, statusOf(t, first, err), "%s", first.Body)
	time.Sleep(1100 * time.Millisecond)
	other := client.CreateOrderRequest{Items: []client.OrderItem{item(2, 2, "2")}}
	second, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), other, alice.auth())
	require.Equal(t, 201, statusOf(t, second, err), "an expired key is free, whatever the body: %s", second.Body)
	require.Empty(t, second.HTTPResponse.Header.Get("Idempotent-Replayed"))
	require.NotEqual(t, first.JSON201.Id, second.JSON201.Id)
	require.Len(t, ordersOf(t, s, alice), 2)
}

// TestIdempotentReplayAcrossRestartWithRedisDown: the record lives in
// PostgreSQL only, so a new API process answers a retry with the stored
// answer while Redis is down.
//
// Not parallel: it waits for Redis's exclusive test lock, and a parallel
// test waiting for it holds one of the -parallel slots. With TestRedisOutage
// holding the other (2 on this machine), a test that holds the shared lock
// while its subtests wait for a slot would never finish: a deadlock. Run
// before the parallel tests start, it waits only for other packages.
func TestIdempotentReplayAcrossRestartWithRedisDown(t *testing.T) {
	prefix := testredis.Outage(t) // Redis runs again when the test ends, pass or fail
	env := map[string]string{"REDIS_KEY_PREFIX": prefix, "CACHE_TTL": "5m"}
	before := startServer(t, env)
	s := newContractServer(t, before.URL, before.DBURL, newObserved())
	alice := newUser(t, s)
	key := uuid.NewString()
	body := client.CreateOrderRequest{Items: []client.OrderItem{item(9, 4, "0.25")}}
	first, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 201, statusOf(t, first, err), "%s", first.Body)

	before.Stop(t)
	testredis.Stop(t)
	env["DATABASE_URL"] = before.DBURL
	after := startServer(t, env)
	s = newContractServer(t, after.URL, after.DBURL, newObserved())

	again, err := s.Client.CreateOrderWithResponse(t.Context(), withKey(key), body, alice.auth())
	require.Equal(t, 201, statusOf(t, again, err), "%s", again.Body)
	require.Equal(t, "true", again.HTTPResponse.Header.Get("Idempotent-Replayed"))
	require.Equal(t, string(first.Body), string(again.Body))
	require.Equal(t, first.HTTPResponse.Header.Get("ETag"), again.HTTPResponse.Header.Get("ETag"))
	require.Len(t, ordersOf(t, s, alice), 1)
	require.EqualValues(t, 1, outboxRows(t, after.DBURL))
	testredis.Start(t)
}
