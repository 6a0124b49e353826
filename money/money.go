// Package money holds exact monetary amounts. It is public because the
// generated client uses it: users build prices with money.Parse.
//
// Amounts are integer cents
// internally, so sums and products never go through floating point, and JSON
// carries them as plain numbers ("5.8", never "5.800000000000001").
package money

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// Amount is a monetary amount in cents.
type Amount struct {
	cents int64
}

// ErrTooPrecise reports an amount with more than two decimals.
var ErrTooPrecise = errors.New("amount has more than two decimals")

// ErrOutOfRange reports an amount too large to represent.
var ErrOutOfRange = errors.New("amount out of range")

// MaxLiteralLen is the longest literal Parse reads, in bytes. Every amount
// fits in far fewer (the widest, "-92233720368547758.08", has 21); a longer
// literal is refused before any work proportional to its length.
const MaxLiteralLen = 64

// ErrTooLong reports a literal longer than MaxLiteralLen.
var ErrTooLong = fmt.Errorf("amount literal longer than %d characters", MaxLiteralLen)

// maxExponent bounds the exponents worth computing. A literal has at most
// MaxLiteralLen digits, so a non-zero amount with a larger exponent is out
// of range, and with a smaller one has more than two decimals; big.Rat
// would spend milliseconds building 10^exponent to find that out.
const maxExponent = 100

// FromCents returns the amount of the given number of cents.
func FromCents(cents int64) Amount { return Amount{cents: cents} }

// Cents returns the amount in cents.
func (a Amount) Cents() int64 { return a.cents }

// Parse reads a decimal literal such as "2.9", "10", "1e2" or "0.05" exactly.
// Literals longer than MaxLiteralLen fail with ErrTooLong.
func Parse(s string) (Amount, error) {
	if len(s) > MaxLiteralLen {
		return Amount{}, ErrTooLong
	}
	if a, ok := parsePlain(s); ok {
		return a, nil
	}
	t := strings.TrimSpace(s)
	// big.Rat also reads fractions ("1/2"), base prefixes ("0x10", "0b11")
	// and digit separators ("1_000"): none of them is a decimal literal.
	if strings.Trim(t, "0123456789.eE+-") != "" {
		return Amount{}, notDecimal(s)
	}
	if mantissa, exponent, ok := strings.Cut(strings.ToLower(t), "e"); ok {
		e, err := strconv.Atoi(exponent) // out of int's range: e is its limit, same sign
		if (err == nil || errors.Is(err, strconv.ErrRange)) && (e > maxExponent || e < -maxExponent) {
			m, ok := new(big.Rat).SetString(mantissa)
			switch {
			case !ok:
				return Amount{}, notDecimal(s)
			case m.Sign() == 0:
				return Amount{}, nil
			case e > 0:
				return Amount{}, ErrOutOfRange
			default:
				return Amount{}, ErrTooPrecise
			}
		}
	}
	r, ok := new(big.Rat).SetString(t)
	if !ok {
		return Amount{}, notDecimal(s)
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		return Amount{}, ErrTooPrecise
	}
	if !r.Num().IsInt64() {
		return Amount{}, ErrOutOfRange
	}
	return Amount{cents: r.Num().Int64()}, nil
}

// parsePlain reads the common form, [-]digits[.d[d]], without big.Rat,
// which is several times slower (docs/decisions.md). Anything else, or a
// value that might overflow, is left to the exact general path.
func parsePlain(s string) (Amount, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || len(whole) > 15 || len(frac) > 2 || (hasDot && frac == "") {
		return Amount{}, false
	}
	var cents int64
	for _, c := range whole + frac {
		if c < '0' || c > '9' {
			return Amount{}, false
		}
		cents = cents*10 + int64(c-'0')
	}
	for range 2 - len(frac) {
		cents *= 10
	}
	if neg {
		cents = -cents
	}
	return Amount{cents: cents}, true
}

func notDecimal(s string) error { return fmt.Errorf("%q is not a decimal number", s) }

// MustParse is Parse for constants in code and tests.
func MustParse(s string) Amount {
	a, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return a
}

// Add returns a + b, failing on overflow.
func (a Amount) Add(b Amount) (Amount, error) {
	sum := a.cents + b.cents
	if (b.cents > 0 && sum < a.cents) || (b.cents < 0 && sum > a.cents) {
		return Amount{}, ErrOutOfRange
	}
	return Amount{cents: sum}, nil
}

// Mul returns a * n, failing on overflow.
func (a Amount) Mul(n int64) (Amount, error) {
	if n != 0 && (a.cents > math.MaxInt64/abs(n) || a.cents < -math.MaxInt64/abs(n)) {
		return Amount{}, ErrOutOfRange
	}
	return Amount{cents: a.cents * n}, nil
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// IsPositive reports whether the amount is greater than zero.
func (a Amount) IsPositive() bool { return a.cents > 0 }

// String formats the amount as the shortest exact decimal: 5.8, 5, 0.05.
func (a Amount) String() string {
	c := uint64(a.cents) //nolint:gosec // two's complement magnitude, see below
	sign := ""
	if a.cents < 0 {
		sign = "-"
		c = -c // in uint64, so that math.MinInt64 (reachable by Parse and Add) is right too
	}
	whole, frac := c/100, c%100
	switch {
	case frac == 0:
		return sign + strconv.FormatUint(whole, 10)
	case frac%10 == 0:
		return fmt.Sprintf("%s%d.%d", sign, whole, frac/10)
	default:
		return fmt.Sprintf("%s%d.%02d", sign, whole, frac)
	}
}

// MarshalJSON writes the amount as a plain JSON number.
func (a Amount) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON reads a JSON number (or a string holding one) exactly.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return errors.New("amount must be a number, not null")
	}
	s = strings.Trim(s, `"`)
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ScanNumeric lets pgx scan a NUMERIC column into an Amount.
func (a *Amount) ScanNumeric(n pgtype.Numeric) error {
	if !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite {
		return errors.New("amount: NUMERIC is NULL, NaN or infinite")
	}
	r := new(big.Rat).SetInt(n.Int)
	exp := new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(abs(int64(n.Exp))), nil))
	if n.Exp >= 0 {
		r.Mul(r, exp)
	} else {
		r.Quo(r, exp)
	}
	r.Mul(r, big.NewRat(100, 1))
	if !r.IsInt() {
		return ErrTooPrecise
	}
	if !r.Num().IsInt64() {
		return ErrOutOfRange
	}
	a.cents = r.Num().Int64()
	return nil
}

// NumericValue lets pgx write an Amount to a NUMERIC column.
func (a Amount) NumericValue() (pgtype.Numeric, error) {
	return pgtype.Numeric{Int: big.NewInt(a.cents), Exp: -2, Valid: true}, nil
}
