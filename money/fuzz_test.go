package money_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"

	"github.com/ordersvc/orders/money"
)

// canonical is the form String must produce: no leading zeros, no trailing
// zeros after the point, at most two decimals, no exponent, no plus sign.
var canonical = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.([0-9][1-9]|[1-9]))?$`)

// FuzzParse checks that whatever Parse accepts prints in canonical form and
// parses back to the same amount, through String and through JSON, that a
// literal longer than MaxLiteralLen is refused as such, and that no input
// makes it panic. Without -fuzz it runs the seeds (these and the hostile
// literals in testdata/fuzz/FuzzParse) as a normal test.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"0", "-0", "5", "5.8", "5.80", "0.05", "0.5", ".5", "5.", "+1", "-2.9",
		"1e2", "1E2", "1.5e1", "1e-2", "1e-3", "1.005", "1000000", "007",
		"92233720368547758.07", "92233720368547758.08",
		"-92233720368547758.07", "-92233720368547758.08", "-92233720368547758.09",
		"1e30", "1e-30", "1e999999", "1e1000001", "", " ", "abc", "1/2", "0x10",
		"0x1p-2", "1_000", "NaN", "Inf", "-Infinity", "1e", "--1", "1.2.3", `"5"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := money.Parse(s)
		if len(s) > money.MaxLiteralLen && !errors.Is(err, money.ErrTooLong) {
			t.Fatalf("Parse of a %d-byte literal = %d cents, %v; want ErrTooLong", len(s), a.Cents(), err)
		}
		if err != nil {
			if a.Cents() != 0 {
				t.Fatalf("Parse(%q) failed (%v) but returned %d cents", s, err, a.Cents())
			}
			return
		}
		str := a.String()
		if !canonical.MatchString(str) {
			t.Fatalf("Parse(%q).String() = %q, not canonical", s, str)
		}
		back, err := money.Parse(str)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not parse back: %v", s, str, err)
		}
		if back != a {
			t.Fatalf("Parse(%q) = %d cents, printed %q, parsed back as %d cents", s, a.Cents(), str, back.Cents())
		}

		b, err := json.Marshal(a)
		if err != nil {
			t.Fatalf("marshal %q: %v", str, err)
		}
		var fromJSON money.Amount
		if err := json.Unmarshal(b, &fromJSON); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if fromJSON != a {
			t.Fatalf("JSON round trip of %q gave %q", str, fromJSON)
		}
	})
}
