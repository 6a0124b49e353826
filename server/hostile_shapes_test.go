package main

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
)

// hostileShape is one request an attacker would send to make the API work
// hard: large, deep, numerous or ambiguous, always within the 1 MiB body
// limit. want is the status it must get.
type hostileShape struct {
	name        string
	method      string
	path        string // "{order}" is replaced by an existing order of the caller
	contentType string
	body        []byte
	token       string // "valid" sends the caller's token, "" none, else this value
	want        int
}

// bodyBudget is what every hostile body stays just under.
const bodyBudget = 1 << 20

// repeatTo builds head + n copies of elem (separated by sep) + tail, with n
// as large as fits in bodyBudget.
func repeatTo(head, elem, sep, tail string) []byte {
	n := (bodyBudget - len(head) - len(tail)) / (len(elem) + len(sep))
	var b bytes.Buffer
	b.Grow(bodyBudget)
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

func hostileShapes() []hostileShape {
	const jsonType, formType = "application/json", "application/x-www-form-urlencoded"
	emptyItems := repeatTo(`{"items":[`, `{}`, `,`, `]}`)
	invalidItems := repeatTo(`{"items":[`, `{"product_id":0,"quantity":0,"price":0}`, `,`, `]}`)
	longPrice := []byte(`{"items":[{"product_id":1,"quantity":1,"price":1.` + strings.Repeat("0", bodyBudget-80) + `}]}`)
	manyKeys := func() []byte {
		var b bytes.Buffer
		b.WriteString(`{"items":[{"product_id":1,"quantity":1,"price":1}]`)
		for i := 0; b.Len() < bodyBudget-32; i++ {
			b.WriteString(`,"k` + strconv.Itoa(i) + `":0`)
		}
		b.WriteString("}")
		return b.Bytes()
	}()
	deep := []byte(strings.Repeat("[", bodyBudget/2-8) + strings.Repeat("]", bodyBudget/2-8))
	junkBeside := repeatTo(`{"items":[{"product_id":1,"quantity":1,"price":1}],"junk":[`, `{}`, `,`, `]}`)
	hugePassword := []byte(`{"email":"mallory@example.com","password":"long-enough-1","Password":"` + strings.Repeat("p", bodyBudget-100) + `"}`)
	formFlood := repeatTo(`grant_type=password&username=a%40b.io&password=x&`, `a=1`, `&`, ``)
	return []hostileShape{
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
		{"status flood", http.MethodPatch, "/orders/{order}/", jsonType, repeatTo(`{"status":"PAID","x":[`, `"CANCELED"`, `,`, `]}`), "valid", http.StatusOK},
	}
}
