// Package hostile holds the requests an attacker sends to make the API work
// hard. The server's tests, its benchmark and the end-to-end memory flood
// all send the same ones.
package hostile

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Shape is one request an attacker would send to make the API work
// hard: large, deep, numerous or ambiguous, always within the 1 MiB body
// limit. want is the status it must get.
type Shape struct {
	Name        string
	Method      string
	Path        string // "{order}" is replaced by an existing order of the caller
	ContentType string
	Body        []byte
	Token       string // "valid" sends the caller's token, "" none, else this value
	Want        int
}

// BodyLimit is the API's body limit; every shape stays within it.
const BodyLimit = 1 << 20

// repeatTo builds head + n copies of elem (separated by sep) + tail, with n
// as large as fits in BodyLimit.
func repeatTo(head, elem, sep, tail string) []byte {
	n := (BodyLimit - len(head) - len(tail)) / (len(elem) + len(sep))
	var b bytes.Buffer
	b.Grow(BodyLimit)
	b.WriteString(head)
	for i := range n {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(elem)
	}
	b.WriteString(tail)
	return b.Bytes()
}

// Shapes returns every shape, each with the status the API must answer.
func Shapes() []Shape {
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"
	emptyItems := repeatTo(`{"items":[`, `{}`, `,`, `]}`)
	invalidItems := repeatTo(`{"items":[`, `{"product_id":0,"quantity":0,"price":0}`, `,`, `]}`)
	longPrice := []byte(`{"items":[{"product_id":1,"quantity":1,"price":1.` + strings.Repeat("0", BodyLimit-80) + `}]}`)
	manyKeys := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"items":[{"product_id":1,"quantity":1,"price":1}]`)
		for i := 0; b.Len() < BodyLimit-32; i++ {
			b.WriteString(`,"k` + strconv.Itoa(i) + `":0`)
		}
		b.WriteString("}")
		return b.Bytes()
	}()
	deep := []byte(strings.Repeat("[", BodyLimit/2-8) + strings.Repeat("]", BodyLimit/2-8))
	junkBeside := repeatTo(`{"items":[{"product_id":1,"quantity":1,"price":1}],"junk":[`, `{}`, `,`, `]}`)
	hugePassword := []byte(`{"email":"mallory@example.com","password":"long-enough-1","Password":"` + strings.Repeat("p", BodyLimit-100) + `"}`)
	formFlood := repeatTo(`grant_type=password&username=a%40b.io&password=x&`, `a=1`, `&`, ``)
	return []Shape{
		{"empty items, bad token", http.MethodPost, "/orders/", jsonType, emptyItems, "x", http.StatusUnauthorized},
		{"empty items, no token", http.MethodPost, "/orders/", jsonType, emptyItems, "", http.StatusUnauthorized},
		{"empty items", http.MethodPost, "/orders/", jsonType, emptyItems, "valid", http.StatusUnprocessableEntity},
		{"invalid items", http.MethodPost, "/orders/", jsonType, invalidItems, "valid", http.StatusUnprocessableEntity},
		{"million-digit price", http.MethodPost, "/orders/", jsonType, longPrice, "valid", http.StatusUnprocessableEntity},
		{"many unknown keys", http.MethodPost, "/orders/", jsonType, manyKeys, "valid", http.StatusUnprocessableEntity},
		{"deep nesting", http.MethodPost, "/orders/", jsonType, deep, "valid", http.StatusBadRequest},
		{"junk beside a valid order", http.MethodPost, "/orders/", jsonType, junkBeside, "valid", http.StatusCreated},
		{"case-variant huge password", http.MethodPost, "/register/", jsonType, hugePassword, "", http.StatusUnprocessableEntity},
		{"form flood", http.MethodPost, "/token/", formType, formFlood, "", http.StatusUnprocessableEntity},
		{"case-variant password", http.MethodPost, "/register/", jsonType,
			[]byte(`{"email":"mallory@example.com","password":"long-enough-1","Password":"x"}`), "", http.StatusUnprocessableEntity},
		{"long case-variant email key", http.MethodPost, "/register/", jsonType,
			[]byte(`{"` + strings.Repeat("EMAIL", 62) + `x":1,"EMAIL":"a@b.io","password":"long-enough-1"}`), "", http.StatusUnprocessableEntity},
		{"case-variant status", http.MethodPatch, "/orders/{order}/", jsonType,
			[]byte(`{"status":"PAID","Status":"CANCELED"}`), "valid", http.StatusUnprocessableEntity},
		{"duplicate status", http.MethodPatch, "/orders/{order}/", jsonType,
			[]byte(`{"status":"PAID","status":"CANCELED"}`), "valid", http.StatusUnprocessableEntity},
		{"many invalid items in 90 KB", http.MethodPost, "/orders/", jsonType,
			[]byte(`{"items":[` + strings.TrimSuffix(strings.Repeat(`{"product_id":-1,"quantity":0,"price":-1},`, 100), ",") + `],"pad":"` + strings.Repeat(" ", 85_000) + `"}`),
			"valid", http.StatusUnprocessableEntity},
		{"duplicate form field", http.MethodPost, "/token/", formType,
			[]byte("username=a%40b.io&password=long-enough-1&password=x"), "", http.StatusUnprocessableEntity},
		{"status flood", http.MethodPatch, "/orders/{order}/", jsonType, repeatTo(`{"status":"PAID","x":[`, `"CANCELED"`, `,`, `]}`), "valid", http.StatusOK},
	}
}

// Request builds the shape's request against base, authenticated as the
// shape says, on the order id when the path names one.
func (s Shape) Request(ctx context.Context, t testing.TB, base, token, orderID string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, s.Method, base+strings.ReplaceAll(s.Path, "{order}", orderID), bytes.NewReader(s.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", s.ContentType)
	switch s.Token {
	case "":
	case "valid":
		req.Header.Set("Authorization", "Bearer "+token)
	default:
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	return req
}
