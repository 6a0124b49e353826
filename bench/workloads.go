package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// user is a seeded account: its token and the orders it created.
type user struct {
	id     int64
	email  string
	token  string
	mu     sync.Mutex
	orders []string
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
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		return b, fmt.Errorf("%w: %s %s: %d %s", errStatus, method, path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, nil
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
	u := a.userFor(worker)
	b, err := a.do(ctx, http.MethodPost, "/orders/", u.token, "application/json", orderBody, http.StatusCreated)
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
