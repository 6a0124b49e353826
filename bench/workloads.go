package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// user is a seeded account: its token, the orders it created and the
// ETags it last read.
type user struct {
	id     int64
	email  string
	token  string
	mu     sync.Mutex
	orders []string
	etags  map[string]string
}

// api drives the running API over plain HTTP: no response parsing beyond
// what a check needs, so the load generator stays cheap.
type api struct {
	base   string
	client *http.Client
	users  []*user
}

const orderBody = `{"items":[{"product_id":42,"quantity":2,"price":2.9},{"product_id":7,"quantity":1,"price":10.05}]}`

func (a *api) do(ctx context.Context, method, path, token, contentType, body string, want int) ([]byte, error) {
	b, _, err := a.doWith(ctx, method, path, token, contentType, body, nil, want)
	return b, err
}

// doWith is do with extra request headers; it returns the response headers too.
func (a *api) doWith(ctx context.Context, method, path, token, contentType, body string, header http.Header, want ...int) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if !slices.Contains(want, resp.StatusCode) {
		return b, resp.Header, fmt.Errorf("%w: %s %s: %d %s", errStatus, method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, resp.Header, nil
}

// seed registers n users and logs them in.
func (a *api) seed(ctx context.Context, n int) error {
	for i := range n {
		email := fmt.Sprintf("bench-%d-%s@example.com", i, randomHex(4))
		b, err := a.do(ctx, http.MethodPost, "/register/", "", "application/json",
			fmt.Sprintf(`{"email":%q,"password":"bench-password"}`, email), http.StatusCreated)
		if err != nil {
			return err
		}
		var u struct{ ID int64 }
		if err := json.Unmarshal(b, &u); err != nil {
			return err
		}
		token, err := a.login(ctx, email)
		if err != nil {
			return err
		}
		a.users = append(a.users, &user{id: u.ID, email: email, token: token})
	}
	return nil
}

func (a *api) login(ctx context.Context, email string) (string, error) {
	form := url.Values{"username": {email}, "password": {"bench-password"}}.Encode()
	b, err := a.do(ctx, http.MethodPost, "/token/", "", "application/x-www-form-urlencoded", form, http.StatusOK)
	if err != nil {
		return "", err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	return tok.AccessToken, json.Unmarshal(b, &tok)
}

func (a *api) userFor(worker int) *user { return a.users[worker%len(a.users)] }

func (a *api) createOrder(ctx context.Context, worker, _ int) error {
	return a.create(ctx, worker, nil)
}

// createOrderKeyed creates an order as a careful client does: with an
// Idempotency-Key of its own, which it would send again on a retry.
func (a *api) createOrderKeyed(ctx context.Context, worker, _ int) error {
	return a.create(ctx, worker, http.Header{"Idempotency-Key": {randomHex(16)}})
}

func (a *api) create(ctx context.Context, worker int, header http.Header) error {
	u := a.userFor(worker)
	b, _, err := a.doWith(ctx, http.MethodPost, "/orders/", u.token, "application/json", orderBody, header, http.StatusCreated)
	if err != nil {
		return err
	}
	var o struct{ ID string }
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	u.mu.Lock()
	u.orders = append(u.orders, o.ID)
	u.mu.Unlock()
	return nil
}

// orderOf returns the seq-th order of the worker's user among the first `window` ones.
func (a *api) orderOf(worker, seq, window int) (*user, string) {
	u := a.userFor(worker)
	u.mu.Lock()
	defer u.mu.Unlock()
	n := min(len(u.orders), window)
	return u, u.orders[seq%n]
}

// getOrder reads from a small hot set per user: after the first read every
// GET is a cache hit.
func (a *api) getOrder(ctx context.Context, worker, seq int) error {
	u, id := a.orderOf(worker, seq, 20)
	_, err := a.do(ctx, http.MethodGet, "/orders/"+id+"/", u.token, "", "", http.StatusOK)
	return err
}

// getOrderNotModified reads the same hot set as getOrder as a client that
// keeps what it read: with If-None-Match naming the ETag it last saw, so an
// unchanged order is a 304 without a body. The first read of each order
// (and the first after a change) is a 200 that teaches it the ETag.
func (a *api) getOrderNotModified(ctx context.Context, worker, seq int) error {
	u, id := a.orderOf(worker, seq, 20)
	u.mu.Lock()
	etag := u.etags[id]
	u.mu.Unlock()
	var header http.Header
	if etag != "" {
		header = http.Header{"If-None-Match": {etag}}
	}
	_, got, err := a.doWith(ctx, http.MethodGet, "/orders/"+id+"/", u.token, "", "", header, http.StatusNotModified, http.StatusOK)
	if err != nil {
		return err
	}
	if now := got.Get("ETag"); now != etag {
		u.mu.Lock()
		if u.etags == nil {
			u.etags = map[string]string{}
		}
		u.etags[id] = now
		u.mu.Unlock()
	}
	return nil
}

func (a *api) listOrders(ctx context.Context, worker, _ int) error {
	u := a.userFor(worker)
	_, err := a.do(ctx, http.MethodGet, fmt.Sprintf("/orders/user/%d/?limit=50", u.id), u.token, "", "", http.StatusOK)
	return err
}

// patchOrder walks the user's orders: the first pass moves each to PAID, the
// second to SHIPPED, later passes repeat SHIPPED (a no-op 200).
func (a *api) patchOrder(ctx context.Context, worker, seq int) error {
	u, id := a.orderOf(worker, seq, 1<<30)
	u.mu.Lock()
	pass := seq / len(u.orders)
	u.mu.Unlock()
	status := "PAID"
	if pass > 0 {
		status = "SHIPPED"
	}
	_, err := a.do(ctx, http.MethodPatch, "/orders/"+id+"/", u.token, "application/json", `{"status":"`+status+`"}`, http.StatusOK)
	return err
}

func (a *api) loginOp(ctx context.Context, worker, _ int) error {
	_, err := a.login(ctx, a.userFor(worker).email)
	return err
}
