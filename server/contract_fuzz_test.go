package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// brokenCase is one hostile request. Whatever it is, the answer must never be
// a 5xx, must be a documented status of the operation (the validating
// transport checks that and the body), and every non-2xx must be
// application/problem+json whose status is the HTTP status.
type brokenCase struct {
	name   string
	method string
	path   string // {order} and {user} stand for the fixture's order and user id
	ctype  string
	body   string // {email} stands for a fresh unique email
	authz  string // Authorization header; {token} stands for the fixture user's token
	want   int    // expected status; 0 accepts any status below 500
}

// brokenFixture is what hostile requests aim at: a user with one order.
type brokenFixture struct {
	s     *contractServer
	user  testUser
	order string
}

func newBrokenFixture(t *testing.T) brokenFixture {
	t.Helper()
	s := startContractServer(t, nil, nil)
	u := newUser(t, s)
	return brokenFixture{s: s, user: u, order: newOrder(t, s, u).Id.String()}
}

func (f brokenFixture) run(t *testing.T, cases []brokenCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := f.s.send(t, f.request(t, tc))
			require.Less(t, resp.Status, 500, "%s", resp.Body)
			if tc.want != 0 {
				require.Equal(t, tc.want, resp.Status, "%s", resp.Body)
			}
			if resp.Status == http.StatusUnauthorized {
				require.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
			}
			if resp.Status == http.StatusUnprocessableEntity {
				p := problemOf(t, resp.Body)
				require.NotEmpty(t, fieldsOf(&p), "422 without field errors: %s", resp.Body)
			}
		})
	}
}

// expand fills in the placeholders of a brokenCase.
func (f brokenFixture) expand() *strings.Replacer {
	return strings.NewReplacer("{order}", f.order, "{user}", fmt.Sprint(f.user.ID), "{token}", f.user.Token, "{email}", uniqueEmail())
}

// request builds the raw request of tc.
func (f brokenFixture) request(t *testing.T, tc brokenCase) *http.Request {
	t.Helper()
	expand := f.expand()
	req, err := http.NewRequestWithContext(t.Context(), tc.method, f.s.URL+expand.Replace(tc.path), strings.NewReader(expand.Replace(tc.body)))
	require.NoError(t, err)
	if tc.ctype != "" {
		req.Header.Set("Content-Type", tc.ctype)
	}
	if tc.authz != "" {
		req.Header.Set("Authorization", expand.Replace(tc.authz))
	}
	return req
}

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded"
)

func TestBrokenInputsToAuthOperations(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	reg := func(name, ctype, body string, want int) brokenCase {
		return brokenCase{name: "register/" + name, method: "POST", path: "/register/", ctype: ctype, body: body, want: want}
	}
	tok := func(name, ctype, body string, want int) brokenCase {
		return brokenCase{name: "token/" + name, method: "POST", path: "/token/", ctype: ctype, body: body, want: want}
	}
	long := strings.Repeat("a", 300)
	f.run(t, []brokenCase{
		reg("malformed JSON", ctJSON, `{"email":`, 400),
		reg("trailing garbage", ctJSON, `{"email":"{email}","password":"12345678"} x`, 0),
		reg("empty body", ctJSON, ``, 422),
		reg("null body", ctJSON, `null`, 0),
		reg("array body", ctJSON, `[]`, 422),
		reg("string body", ctJSON, `"hello"`, 422),
		reg("number body", ctJSON, `42`, 422),
		reg("empty object", ctJSON, `{}`, 422),
		reg("missing password", ctJSON, `{"email":"{email}"}`, 422),
		reg("email wrong type", ctJSON, `{"email":123,"password":"12345678"}`, 422),
		reg("email null", ctJSON, `{"email":null,"password":"12345678"}`, 422),
		reg("password number", ctJSON, `{"email":"{email}","password":12345678}`, 422),
		reg("password null", ctJSON, `{"email":"{email}","password":null}`, 422),
		reg("password 7 chars", ctJSON, `{"email":"{email}","password":"1234567"}`, 422),
		reg("password 129 chars", ctJSON, `{"email":"{email}","password":"`+strings.Repeat("p", 129)+`"}`, 422),
		reg("password with NUL", ctJSON, `{"email":"{email}","password":"abc\u0000defgh"}`, 201),
		reg("unicode password", ctJSON, `{"email":"{email}","password":"пароль-日本語"}`, 201),
		reg("email 255 chars", ctJSON, `{"email":"`+long+`@example.com","password":"12345678"}`, 422),
		reg("email with NUL", ctJSON, `{"email":"a\u0000b@example.com","password":"12345678"}`, 422),
		reg("email with zero-width space", ctJSON, `{"email":"a\u200bb@example.com","password":"12345678"}`, 422),
		reg("email with RTL override", ctJSON, `{"email":"\u202eb@example.com","password":"12345678"}`, 422),
		reg("email display name", ctJSON, `{"email":"Alice <alice@example.com>","password":"12345678"}`, 422),
		reg("email without domain", ctJSON, `{"email":"alice@","password":"12345678"}`, 422),
		reg("email surrounded by spaces", ctJSON, `{"email":" {email} ","password":"12345678"}`, 422),
		reg("unicode email", ctJSON, `{"email":"ünï-cödé@例え.jp","password":"12345678"}`, 0),
		reg("invalid UTF-8", ctJSON, "{\"email\":\"\xff\xfe@example.com\",\"password\":\"12345678\"}", 0),
		reg("huge number", ctJSON, `{"email":1e999,"password":"12345678"}`, 422),
		reg("deep nesting", ctJSON, strings.Repeat("[", 100_000), 400),
		reg("extra field", ctJSON, `{"email":"{email}","password":"12345678","admin":true}`, 201),
		reg("text/plain", "text/plain", `{"email":"{email}","password":"12345678"}`, 422),
		reg("form body", ctForm, `email={email}&password=12345678`, 422),
		reg("no content type", "", `{"email":"{email}","password":"12345678"}`, 422),
		reg("multipart", "multipart/form-data; boundary=x", "--x--", 422),
		tok("JSON body", ctJSON, `{"username":"a@example.com","password":"12345678"}`, 422),
		tok("empty body", ctForm, ``, 422),
		tok("missing password", ctForm, `username=a@example.com`, 422),
		tok("missing username", ctForm, `password=12345678`, 422),
		tok("empty username", ctForm, `username=&password=12345678`, 422),
		tok("grant type client_credentials", ctForm, `grant_type=client_credentials&username=a@example.com&password=x`, 422),
		tok("username 255 chars", ctForm, `username=`+long+`&password=x`, 422),
		tok("password 129 chars", ctForm, `username=a@example.com&password=`+strings.Repeat("p", 129), 422),
		tok("scope 1001 chars", ctForm, `username=a@example.com&password=x&scope=`+strings.Repeat("s", 1001), 422),
		tok("bad escape", ctForm, `username=%zz&password=x`, 0),
		tok("NUL in username", ctForm, `username=a%00b@example.com&password=x`, 422),
		tok("invalid UTF-8 username", ctForm, `username=%ff%fe@example.com&password=x`, 422),
		tok("zero-width space in username", ctForm, `username=a%E2%80%8Bb@example.com&password=x`, 422),
		tok("unicode username", ctForm, `username=%C3%BC@example.com&password=x`, 401),
		tok("repeated fields", ctForm, `username=a@example.com&username=b@example.com&password=x`, 0),
		tok("text/plain", "text/plain", `username=a@example.com&password=x`, 422),
		tok("no content type", "", `username=a@example.com&password=x`, 422),
		tok("wrong password for user", ctForm, `username=`+f.user.Email+`&password=wrong-password`, 401),
		tok("grant type password", ctForm, `grant_type=password&username=`+f.user.Email+`&password=`+f.user.Password, 200),
	})
}

// TestBadTokensAreRejected sends every kind of bad bearer credential to every
// protected operation: always 401 with WWW-Authenticate: Bearer.
func TestBadTokensAreRejected(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	credentials := map[string]string{
		"no header":        "",
		"scheme only":      "Bearer",
		"empty token":      "Bearer ",
		"basic auth":       "Basic dXNlcjpwYXNzd29yZA==",
		"other scheme":     "Token {token}",
		"token only":       "{token}",
		"token twice":      "Bearer {token} {token}",
		"unicode token":    "Bearer ünïcödé",
		"huge token":       "Bearer " + strings.Repeat("A", 7000),
		"valid token, bad": "Bearer {token}x",
	}
	for name, token := range badTokens(t, f.user) {
		credentials[name] = "Bearer " + token
	}
	var cases []brokenCase
	for _, target := range securedTargets { // server/authn_test.go
		for name, authz := range credentials {
			tc := target
			tc.name, tc.authz, tc.want = target.name+"/"+name, authz, http.StatusUnauthorized
			cases = append(cases, tc)
		}
	}
	f.run(t, cases)
}
