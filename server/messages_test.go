package main

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// goTypeWords betray Go types in a message meant for clients.
var goTypeWords = []string{"Go ", "struct", "api.", "int64", "int32", "float64", "[]", "json.", "strconv", "reflect"}

// TestDetailsNameNoGoTypes sends values of the wrong type, and numbers out
// of any range, to every operation that takes input: each answer is a 4xx
// whose detail and field messages speak in the contract's terms.
func TestDetailsNameNoGoTypes(t *testing.T) {
	t.Parallel()
	f := newBrokenFixture(t)
	order := func(items string) brokenCase {
		return brokenCase{method: "POST", path: "/orders/", ctype: ctJSON, body: `{"items":` + items + `}`, authz: "Bearer {token}"}
	}
	line := func(field, value string) brokenCase {
		fields := map[string]string{"product_id": "1", "quantity": "1", "price": "1"}
		fields[field] = value
		return order(`[{"product_id":` + fields["product_id"] + `,"quantity":` + fields["quantity"] + `,"price":` + fields["price"] + `}]`)
	}
	patch := func(body string) brokenCase {
		return brokenCase{method: "PATCH", path: "/orders/{order}/", ctype: ctJSON, body: body, authz: "Bearer {token}"}
	}
	get := func(path string) brokenCase {
		return brokenCase{method: "GET", path: path, authz: "Bearer {token}"}
	}
	register := func(body string) brokenCase {
		return brokenCase{method: "POST", path: "/register/", ctype: ctJSON, body: body}
	}
	token := func(body string) brokenCase {
		return brokenCase{method: "POST", path: "/token/", ctype: ctForm, body: body}
	}
	cases := map[string]brokenCase{
		"createOrder/items a string":           order(`"x"`),
		"createOrder/items an object":          order(`{}`),
		"createOrder/item a number":            order(`[1]`),
		"createOrder/product_id a string":      line("product_id", `"1"`),
		"createOrder/product_id 1e20":          line("product_id", `1e20`),
		"createOrder/product_id 2^63":          line("product_id", `9223372036854775808`),
		"createOrder/product_id -2^63-1":       line("product_id", `-9223372036854775809`),
		"createOrder/product_id an array":      line("product_id", `[1]`),
		"createOrder/quantity 1.5":             line("quantity", `1.5`),
		"createOrder/quantity 2^31":            line("quantity", `2147483648`),
		"createOrder/quantity true":            line("quantity", `true`),
		"createOrder/price a string":           line("price", `"1"`),
		"createOrder/price an object":          line("price", `{}`),
		"createOrder/price 1e400":              line("price", `1e400`),
		"createOrder/price three decimals":     line("price", `1.001`),
		"createOrder/price null":               line("price", `null`),
		"updateOrderStatus/status a number":    patch(`{"status":1}`),
		"updateOrderStatus/status an array":    patch(`{"status":[]}`),
		"updateOrderStatus/body an array":      patch(`[]`),
		"register/email a number":              register(`{"email":1,"password":"12345678"}`),
		"register/password an object":          register(`{"email":"{email}","password":{}}`),
		"register/body a string":               register(`"x"`),
		"createToken/username repeated":        token(`username=a@example.com&username=b@example.com&password=x`),
		"createToken/username as a list":       token(`username[]=a@example.com&password=x`),
		"getOrder/id a number":                 get("/orders/12/"),
		"listUserOrders/user_id 2^64":          get("/orders/user/18446744073709551616/"),
		"listUserOrders/user_id 1.5":           get("/orders/user/1.5/"),
		"listUserOrders/user_id text":          get("/orders/user/abc/"),
		"listUserOrders/limit 2^64":            get("/orders/user/{user}/?limit=18446744073709551616"),
		"listUserOrders/limit 1e3":             get("/orders/user/{user}/?limit=1e3"),
		"listUserOrders/limit repeated":        get("/orders/user/{user}/?limit=1&limit=2"),
		"listUserOrders/status repeated":       get("/orders/user/{user}/?status=PAID&status=SHIPPED"),
		"listUserOrders/cursor repeated":       get("/orders/user/{user}/?cursor=a&cursor=b"),
		"listUserOrders/cursor a number":       get("/orders/user/{user}/?cursor=12"),
		"updateOrderStatus/id a huge number":   {method: "PATCH", path: "/orders/99999999999999999999/", ctype: ctJSON, body: `{"status":"PAID"}`, authz: "Bearer {token}"},
		"createOrder/items nested arrays":      order(`[[[1]]]`),
		"createOrder/product_id negative zero": line("product_id", `-0`),
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := f.s.send(t, f.request(t, tc))
			require.GreaterOrEqual(t, r.Status, 400, "%s", r.Body)
			require.Less(t, r.Status, 500, "%s", r.Body)
			p := problemOf(t, r.Body)
			messages := []string{}
			if p.Detail != nil {
				messages = append(messages, *p.Detail)
			}
			if p.Errors != nil {
				for _, e := range *p.Errors {
					messages = append(messages, e.Field, e.Message)
				}
			}
			for _, m := range messages {
				for _, word := range goTypeWords {
					require.NotContains(t, m, word, "answer %d: %s", r.Status, r.Body)
				}
			}
			if r.Status == http.StatusUnprocessableEntity {
				require.NotEmpty(t, fieldsOf(&p), "%s", r.Body)
			}
		})
	}
}

func TestPlainTypeMessages(t *testing.T) {
	t.Parallel()
	for v, want := range map[any]string{
		int64(0):          "must be an integer from -9223372036854775808 to 9223372036854775807",
		int32(0):          "must be an integer from -2147483648 to 2147483647",
		int8(0):           "must be an integer from -128 to 127",
		uint8(0):          "must be an integer from 0 to 255",
		uint64(0):         "must be an integer from 0 to 18446744073709551615",
		float64(0):        "must be a number",
		"":                "must be a string",
		false:             "must be true or false",
		[2]int{}:          "must be an array",
		struct{ A int }{}: "must be an object",
		(*int)(nil):       "has the wrong type",
	} {
		require.Equal(t, want, plainTypeMessage(reflect.TypeOf(v)), "%T", v)
	}
	require.Equal(t, "must be an array", plainTypeMessage(reflect.TypeOf([]int{})))
	require.Equal(t, "must be an object", plainTypeMessage(reflect.TypeOf(map[string]int{})))
	require.Equal(t, "has the wrong type", plainTypeMessage(nil))
}
