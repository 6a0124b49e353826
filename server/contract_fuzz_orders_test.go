package main

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestBrokenInputsToCreateOrder(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	order := func(name, ctype, body string, want int) brokenCase {
		return brokenCase{name: name, method: "POST", path: "/orders/", ctype: ctype, body: body, authz: "Bearer {token}", want: want}
	}
	line := func(productID, quantity, price string) string {
		return fmt.Sprintf(`{"items":[{"product_id":%s,"quantity":%s,"price":%s}]}`, productID, quantity, price)
	}
	lines := func(n int, one string) string {
		return `{"items":[` + strings.TrimSuffix(strings.Repeat(one+",", n), ",") + `]}`
	}
	f.run(t, []brokenCase{
		order("malformed JSON", ctJSON, `{"items":[`, 400),
		order("empty body", ctJSON, ``, 422),
		order("empty object", ctJSON, `{}`, 422),
		order("null body", ctJSON, `null`, 0),
		order("items null", ctJSON, `{"items":null}`, 422),
		order("items object", ctJSON, `{"items":{}}`, 422),
		order("items string", ctJSON, `{"items":"many"}`, 422),
		order("no items", ctJSON, `{"items":[]}`, 422),
		order("null item", ctJSON, `{"items":[null]}`, 422),
		order("empty item", ctJSON, `{"items":[{}]}`, 422),
		order("missing price", ctJSON, `{"items":[{"product_id":1,"quantity":1}]}`, 422),
		order("quantity 0", ctJSON, line("1", "0", "1"), 422),
		order("quantity -1", ctJSON, line("1", "-1", "1"), 422),
		order("quantity 10001", ctJSON, line("1", "10001", "1"), 422),
		order("quantity 1.5", ctJSON, line("1", "1.5", "1"), 422),
		order("quantity 1e20", ctJSON, line("1", "1e20", "1"), 422),
		order("quantity string", ctJSON, line("1", `"2"`, "1"), 422),
		order("quantity null", ctJSON, line("1", "null", "1"), 422),
		order("product 0", ctJSON, line("0", "1", "1"), 422),
		order("product -1", ctJSON, line("-1", "1", "1"), 422),
		order("product beyond int64", ctJSON, line("9223372036854775808", "1", "1"), 422),
		order("product 1e400", ctJSON, line("1e400", "1", "1"), 422),
		order("product string", ctJSON, line(`"abc"`, "1", "1"), 422),
		order("price 0", ctJSON, line("1", "1", "0"), 422),
		order("price negative", ctJSON, line("1", "1", "-0.01"), 422),
		order("price 3 decimals", ctJSON, line("1", "1", "0.001"), 422),
		order("price tiny", ctJSON, line("1", "1", "1e-7"), 422),
		order("price above maximum", ctJSON, line("1", "1", "1000000.01"), 422),
		order("price 1e400", ctJSON, line("1", "1", "1e400"), 422),
		order("price string", ctJSON, line("1", "1", `"1.00"`), 422),
		order("price null", ctJSON, line("1", "1", "null"), 422),
		order("price object", ctJSON, line("1", "1", `{"amount":1}`), 422),
		order("price exponent", ctJSON, line("1", "1", "1e2"), 201),
		order("largest order", ctJSON, lines(100, `{"product_id":9223372036854775807,"quantity":10000,"price":1000000}`), 201),
		order("101 items", ctJSON, lines(101, `{"product_id":1,"quantity":1,"price":1}`), 422),
		order("unicode key", ctJSON, `{"ítems":[{"product_id":1,"quantity":1,"price":1}]}`, 422),
		order("extra fields", ctJSON, `{"items":[{"product_id":1,"quantity":1,"price":1,"discount":99}],"user_id":1}`, 201),
		order("text/plain", "text/plain", line("1", "1", "1"), 422),
		order("form body", ctForm, `items=1`, 422),
		order("no content type", "", line("1", "1", "1"), 422),
	})
}

func TestBrokenInputsToOrderByID(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	get := func(name, id string, want int) brokenCase {
		return brokenCase{name: "get/" + name, method: "GET", path: "/orders/" + id + "/", authz: "Bearer {token}", want: want}
	}
	patch := func(name, id, ctype, body string, want int) brokenCase {
		return brokenCase{name: "patch/" + name, method: "PATCH", path: "/orders/" + id + "/", ctype: ctype, body: body, authz: "Bearer {token}", want: want}
	}
	valid := uuid.New().String()
	ids := map[string]struct {
		id   string
		want int
	}{
		"word":               {"not-a-uuid", 422},
		"integer":            {"123", 422},
		"negative":           {"-1", 422},
		"hex without dashes": {strings.ReplaceAll(valid, "-", ""), 422},
		"braces":             {"{" + valid + "}", 422},
		"urn":                {"urn:uuid:" + valid, 422},
		"one char short":     {valid[:35], 422},
		"unicode":            {url.PathEscape("ü-" + valid[2:]), 422},
		"NUL":                {"%00", 422},
		"SQL":                {url.PathEscape("1' OR '1'='1"), 422},
		"5000 chars":         {strings.Repeat("a", 5000), 422},
		"nil uuid":           {uuid.Nil.String(), 404},
		"unknown":            {valid, 404},
		"upper case":         {strings.ToUpper(valid), 404},
	}
	var cases []brokenCase
	for name, tc := range ids {
		cases = append(cases, get(name, tc.id, tc.want), patch(name, tc.id, ctJSON, `{"status":"PENDING"}`, tc.want))
	}
	cases = append(cases,
		patch("malformed JSON", "{order}", ctJSON, `{"status":`, 400),
		patch("empty body", "{order}", ctJSON, ``, 422),
		patch("empty object", "{order}", ctJSON, `{}`, 422),
		patch("status null", "{order}", ctJSON, `{"status":null}`, 422),
		patch("status lower case", "{order}", ctJSON, `{"status":"paid"}`, 422),
		patch("status number", "{order}", ctJSON, `{"status":1}`, 422),
		patch("status empty", "{order}", ctJSON, `{"status":""}`, 422),
		patch("status unicode", "{order}", ctJSON, `{"status":"PÄID"}`, 422),
		patch("status array", "{order}", ctJSON, `{"status":["PAID"]}`, 422),
		patch("text/plain", "{order}", "text/plain", `{"status":"PENDING"}`, 422),
		patch("no content type", "{order}", "", `{"status":"PENDING"}`, 422),
		patch("extra field", "{order}", ctJSON, `{"status":"PENDING","user_id":1}`, 200),
		get("no trailing slash", "{order}", 200),
		brokenCase{name: "get/missing slash", method: "GET", path: "/orders/{order}", authz: "Bearer {token}", want: 200},
		brokenCase{name: "patch/missing slash", method: "PATCH", path: "/orders/{order}", ctype: ctJSON, body: `{"status":"PENDING"}`, authz: "Bearer {token}", want: 200},
		brokenCase{name: "get/empty id", method: "GET", path: "/orders//", authz: "Bearer {token}"},
		brokenCase{name: "delete", method: "DELETE", path: "/orders/{order}/", authz: "Bearer {token}", want: 405},
		brokenCase{name: "put", method: "PUT", path: "/orders/{order}/", ctype: ctJSON, body: `{"status":"PAID"}`, authz: "Bearer {token}", want: 405},
	)
	f.run(t, cases)
}

func TestBrokenInputsToListUserOrders(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	list := func(name, user, query string, want int) brokenCase {
		return brokenCase{name: name, method: "GET", path: "/orders/user/" + user + "/" + query, authz: "Bearer {token}", want: want}
	}
	cursor := func(raw string) string { return "?cursor=" + base64.RawURLEncoding.EncodeToString([]byte(raw)) }
	id := uuid.New().String()
	f.run(t, []brokenCase{
		list("user 0", "0", "", 422),
		list("user -1", "-1", "", 422),
		list("user abc", "abc", "", 422),
		list("user huge", "99999999999999999999", "", 422),
		list("user max int64 is someone else", "9223372036854775807", "", 403),
		list("user 1.5", "1.5", "", 422),
		list("user 1e3", "1e3", "", 422),
		list("user unicode", url.PathEscape("１"), "", 422),
		list("limit 0", "{user}", "?limit=0", 422),
		list("limit -1", "{user}", "?limit=-1", 422),
		list("limit 101", "{user}", "?limit=101", 422),
		list("limit huge", "{user}", "?limit=99999999999999999999", 422),
		list("limit abc", "{user}", "?limit=abc", 422),
		list("limit empty", "{user}", "?limit=", 0),
		list("limit 1.5", "{user}", "?limit=1.5", 422),
		list("limit 1", "{user}", "?limit=1", 200),
		list("limit 100", "{user}", "?limit=100", 200),
		list("limit repeated", "{user}", "?limit=1&limit=2", 0),
		list("cursor garbage", "{user}", "?cursor=!!!", 422),
		list("cursor empty", "{user}", "?cursor=", 0),
		list("cursor 201 chars", "{user}", "?cursor="+strings.Repeat("A", 201), 422),
		list("cursor base64 junk", "{user}", cursor("junk"), 422),
		list("cursor bad uuid", "{user}", cursor("1700000000000000.nope"), 422),
		list("cursor bad time", "{user}", cursor("soon."+id), 422),
		list("cursor time overflow", "{user}", cursor("99999999999999999999."+id), 422),
		list("cursor max int64", "{user}", cursor("9223372036854775807."+id), 422),
		list("cursor min int64", "{user}", cursor("-9223372036854775808."+id), 422),
		list("cursor year 1", "{user}", cursor("-62135596800000000."+id), 200),
		list("cursor before year 1", "{user}", cursor("-62135596800000001."+id), 422),
		list("cursor plus sign", "{user}", cursor("+1700000000000000."+id), 422),
		list("cursor leading zero", "{user}", cursor("01700000000000000."+id), 422),
		list("cursor padded base64", "{user}", "?cursor="+base64.URLEncoding.EncodeToString([]byte("1."+id)), 422),
		list("status unknown", "{user}", "?status=LOST", 422),
		list("status lower case", "{user}", "?status=paid", 422),
		list("status empty", "{user}", "?status=", 0),
		list("status PAID", "{user}", "?status=PAID", 200),
		list("unknown parameter", "{user}", "?color=blue", 200),
		brokenCase{name: "missing slash", method: "GET", path: "/orders/user/{user}", authz: "Bearer {token}", want: 200},
		brokenCase{name: "no user id", method: "GET", path: "/orders/user/", authz: "Bearer {token}"},
		brokenCase{name: "post", method: "POST", path: "/orders/user/{user}/", ctype: ctJSON, body: `{}`, authz: "Bearer {token}", want: 405},
	})
}

// TestPathVariants: every operation answers on its path without the
// trailing slash too; unknown paths and methods get a problem, never a 5xx.
func TestPathVariants(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	f.run(t, []brokenCase{
		{name: "register without slash", method: "POST", path: "/register", ctype: ctJSON, body: `{"email":"{email}","password":"12345678"}`, want: 201},
		{name: "token without slash", method: "POST", path: "/token", ctype: ctForm, body: "username=" + url.QueryEscape(f.user.Email) + "&password=" + f.user.Password, want: 200},
		{name: "orders without slash", method: "POST", path: "/orders", ctype: ctJSON, body: `{"items":[{"product_id":1,"quantity":1,"price":1}]}`, authz: "Bearer {token}", want: 201},
		{name: "double slash", method: "GET", path: "//orders/{order}/", authz: "Bearer {token}"},
		{name: "dot segment", method: "GET", path: "/orders/../orders/{order}/", authz: "Bearer {token}"},
		{name: "health with slash", method: "GET", path: "/health/"},
		{name: "ready with slash", method: "GET", path: "/ready/"},
		{name: "GET register", method: "GET", path: "/register/", want: 405},
		{name: "GET token", method: "GET", path: "/token/", want: 405},
		{name: "DELETE orders", method: "DELETE", path: "/orders/", authz: "Bearer {token}", want: 405},
		{name: "POST health", method: "POST", path: "/health", want: 405},
		{name: "unknown path", method: "GET", path: "/nope/", want: 404},
		{name: "unknown nested path", method: "GET", path: "/orders/{order}/items/", authz: "Bearer {token}", want: 404},
		{name: "query only", method: "GET", path: "/?x=1", want: 404},
	})
}
