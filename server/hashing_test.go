package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// credentialAnswer is one answer to a concurrent register or login.
type credentialAnswer struct {
	status     int
	retryAfter string
	took       time.Duration
	err        error
}

// concurrentCredentialRequests sends n requests made by build at once
// through c and returns the answers.
func concurrentCredentialRequests(c *http.Client, n int, build func() *http.Request) []credentialAnswer {
	answers := make([]credentialAnswer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			start := time.Now()
			resp, err := c.Do(build())
			if err != nil {
				answers[i].err = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			answers[i] = credentialAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
		})
	}
	wg.Wait()
	return answers
}

// credentialRequest is a POST of body to base+path; it cannot fail for the
// fixed paths and bodies of these tests.
func credentialRequest(base, path, ctype, body string) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), "POST", base+path, strings.NewReader(body))
	req.Header.Set("Content-Type", ctype)
	return req
}

func loginRequest(base, email, password string) *http.Request {
	return credentialRequest(base, "/token/", ctForm, url.Values{"username": {email}, "password": {password}}.Encode())
}

func registerRequest(base, email string) *http.Request {
	return credentialRequest(base, "/register/", ctJSON, fmt.Sprintf(`{"email":%q,"password":%q}`, email, testPassword))
}

// reachHashingBusy makes register and createToken answer 503: with one
// hashing worker and a queue deadline of 1 ms, concurrent requests find the
// worker busy for longer than they may wait. The validating transport checks
// each 503 against openapi.yaml and records it in seen.
func reachHashingBusy(t *testing.T, seen *observed) {
	t.Helper()
	s := startContractServer(t, map[string]string{"PASSWORD_HASH_WORKERS": "1", "PASSWORD_HASH_QUEUE_TIMEOUT": "1ms"}, seen)
	email := uniqueEmail()
	require.Eventually(t, func() bool { // alone, a registration gets the worker
		return s.send(t, registerRequest(s.URL, email)).Status == http.StatusCreated
	}, 30*time.Second, 10*time.Millisecond)
	requests := map[string]func() *http.Request{
		"register":    func() *http.Request { return registerRequest(s.URL, uniqueEmail()) },
		"createToken": func() *http.Request { return loginRequest(s.URL, email, testPassword) },
	}
	for op, build := range requests {
		t.Run(op, func(t *testing.T) {
			statuses := map[int]int{}
			for _, a := range concurrentCredentialRequests(s.HTTP, 20, build) {
				require.NoError(t, a.err)
				statuses[a.status]++
				if a.status == http.StatusServiceUnavailable {
					require.Equal(t, "1", a.retryAfter)
				}
			}
			require.Positive(t, statuses[http.StatusServiceUnavailable], "statuses %v", statuses)
			require.Positive(t, statuses[http.StatusOK]+statuses[http.StatusCreated], "the worker keeps serving: statuses %v", statuses)
		})
	}
}

// TestHashingQueueHasADeadline: logins and registrations that would wait
// longer than PASSWORD_HASH_QUEUE_TIMEOUT for the hashing worker are told to
// come back (503, Retry-After: 1) instead of queueing without bound.
func TestHashingQueueHasADeadline(t *testing.T) {
	t.Parallel()
	reachHashingBusy(t, newObserved())
}

// BenchmarkLoginFlood sends 50 logins at once to a server with one hashing
// worker, with the default queue deadline and with none to speak of, and
// prints how long they took and how they were answered. Nothing is asserted.
//
//	go test -run XXX -bench LoginFlood -benchtime 5x ./server
func BenchmarkLoginFlood(b *testing.B) {
	for _, deadline := range []string{"", "1h"} {
		name := "deadline " + deadline
		if deadline == "" {
			name = "default deadline"
		}
		b.Run(name, func(b *testing.B) {
			ts := startQuietServer(b, map[string]string{"PASSWORD_HASH_QUEUE_TIMEOUT": deadline})
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			email := uniqueEmail()
			resp, err := c.Do(registerRequest(ts.URL, email))
			if err != nil || resp.StatusCode != http.StatusCreated {
				b.Fatalf("register: %v %v", resp, err)
			}
			_ = resp.Body.Close()
			var took []time.Duration
			statuses := map[int]int{}
			for b.Loop() {
				for _, a := range concurrentCredentialRequests(c, 50, func() *http.Request { return loginRequest(ts.URL, email, testPassword) }) {
					if a.err != nil {
						b.Fatal(a.err)
					}
					statuses[a.status]++
					took = append(took, a.took)
				}
			}
			slices.Sort(took)
			fmt.Printf("login flood, 50 at once, 1 worker, %s: p50 %s, p99 %s, max %s, statuses %v\n", name,
				took[len(took)/2].Round(time.Millisecond), took[len(took)*99/100].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), statuses)
		})
	}
}
