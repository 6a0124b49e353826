package money_test

import (
	"strings"
	"testing"

	"github.com/ordersvc/orders/money"
)

// BenchmarkParseHostile prints what a hostile literal costs Parse next to an
// ordinary price: refused literals must cost no more than a plain one.
func BenchmarkParseHostile(b *testing.B) {
	for _, bc := range []struct{ name, literal string }{
		{"plain", "2.90"},
		{"exponent", "1.5e1"},
		{"million_digits", "1." + strings.Repeat("0", 1_000_000)},
		{"exponent_999999", "1e999999"},
		{"exponent_-999999", "1e-999999"},
		{"longest_accepted", "0." + strings.Repeat("0", money.MaxLiteralLen-6) + "1e2"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_, _ = money.Parse(bc.literal)
			}
		})
	}
}
