package money_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/money"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in    string
		cents int64
	}{
		{"0", 0},
		{"5", 500},
		{"5.8", 580},
		{"5.80", 580},
		{"0.05", 5},
		{"0.5", 50},
		{".5", 50},
		{"5.", 500},
		{"2.9", 290},
		{"+2.9", 290},
		{"-2.9", -290},
		{"1000000", 100_000_000},
		{"1e2", 10_000},
		{"1E2", 10_000},
		{"1.5e1", 1_500},
		{"1e-2", 1},
		{"5e-1", 50},
		{"123e-2", 123},
		{"0.1000", 10},
		{"007.50", 750},
		{"  3.25\t", 325},
		{"92233720368547758.07", math.MaxInt64},
		{"-92233720368547758.07", -math.MaxInt64},
		{"-92233720368547758.08", math.MinInt64},
		{"1." + strings.Repeat("0", money.MaxLiteralLen-2), 100},
		{"0e999999", 0},
		{"-0.0e-99999999999999999999", 0},
		{"0.0000000001e8", 1},
		{"1e16", 1e18},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := money.Parse(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.cents, got.Cents())
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want error // nil: any error will do (not a number at all)
	}{
		{"three decimals", "1.005", money.ErrTooPrecise},
		{"three decimals with trailing zero", "0.001", money.ErrTooPrecise},
		{"negative exponent too small", "1e-3", money.ErrTooPrecise},
		{"many decimals", "2.123456789", money.ErrTooPrecise},
		{"tiny exponent", "1e-999999", money.ErrTooPrecise},
		{"one cent over int64", "92233720368547758.08", money.ErrOutOfRange},
		{"one cent under int64", "-92233720368547758.09", money.ErrOutOfRange},
		{"huge", "100000000000000000000", money.ErrOutOfRange},
		{"huge exponent", "1e30", money.ErrOutOfRange},
		{"exponent beyond the bound", "1e101", money.ErrOutOfRange},
		{"exponent beyond int", "1e99999999999999999999", money.ErrOutOfRange},
		{"negative exponent beyond the bound", "5e-101", money.ErrTooPrecise},
		{"huge exponent on a bad mantissa", "1.2.3e999", nil},
		{"huge exponent without mantissa", "e999", nil},
		{"one character too long", "1." + strings.Repeat("0", money.MaxLiteralLen-1), money.ErrTooLong},
		{"a million digits", "1." + strings.Repeat("0", 1_000_000), money.ErrTooLong},
		{"long blank padding", strings.Repeat(" ", money.MaxLiteralLen) + "1", money.ErrTooLong},
		{"empty", "", nil},
		{"blank", "   ", nil},
		{"letters", "abc", nil},
		{"fraction", "1/2", nil},
		{"fraction of integers", "10/1", nil},
		{"comma decimal", "1,5", nil},
		{"two dots", "1.2.3", nil},
		{"dangling exponent", "1e", nil},
		{"double sign", "--1", nil},
		{"currency sign", "$5", nil},
		{"unit", "5 EUR", nil},
		{"NaN", "NaN", nil},
		{"Inf", "Inf", nil},
		{"infinity", "-Infinity", nil},
		{"hex", "0x10", nil},
		{"hex float", "0x1p-2", nil},
		{"binary", "0b11", nil},
		{"octal", "0o7", nil},
		{"underscore", "1_000", nil},
		{"json string quotes", `"5"`, nil},
		{"non-ASCII digit", "١", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := money.Parse(tt.in)
			require.Error(t, err, "Parse(%q) = %v", tt.in, got)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
			}
			require.Zero(t, got.Cents())
		})
	}
}

func TestMustParse(t *testing.T) {
	t.Parallel()
	require.Equal(t, int64(1999), money.MustParse("19.99").Cents())
	require.Panics(t, func() { money.MustParse("19.999") })
	require.Panics(t, func() { money.MustParse("x") })
}

func TestStringIsShortestExactDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cents int64
		want  string
	}{
		{0, "0"},
		{5, "0.05"},
		{50, "0.5"},
		{99, "0.99"},
		{100, "1"},
		{500, "5"},
		{580, "5.8"},
		{501, "5.01"},
		{510, "5.1"},
		{1999, "19.99"},
		{100_000_000, "1000000"},
		{-5, "-0.05"},
		{-50, "-0.5"},
		{-580, "-5.8"},
		{-100, "-1"},
		{math.MaxInt64, "92233720368547758.07"},
		{-math.MaxInt64, "-92233720368547758.07"},
		{math.MinInt64, "-92233720368547758.08"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			a := money.FromCents(tt.cents)
			require.Equal(t, tt.want, a.String())
			b, err := a.MarshalJSON()
			require.NoError(t, err)
			require.Equal(t, tt.want, string(b))
			back, err := money.Parse(a.String())
			require.NoError(t, err)
			require.Equal(t, a, back)
		})
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	type line struct {
		Price money.Amount `json:"price"`
	}

	t.Run("marshal writes a plain number", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(line{Price: money.MustParse("5.80")})
		require.NoError(t, err)
		require.JSONEq(t, `{"price":5.8}`, string(b))
		require.Equal(t, `{"price":5.8}`, string(b))
	})

	t.Run("round trip", func(t *testing.T) {
		t.Parallel()
		for _, s := range []string{"0", "0.05", "0.5", "5", "5.8", "19.99", "1000000", "-3.1"} {
			in := line{Price: money.MustParse(s)}
			b, err := json.Marshal(in)
			require.NoError(t, err)
			var out line
			require.NoError(t, json.Unmarshal(b, &out))
			require.Equal(t, in, out, "json %s", b)
		}
	})

	tests := []struct {
		name    string
		body    string
		cents   int64
		wantErr error // checked with ErrorIs when set
		fails   bool
	}{
		{name: "number", body: `{"price":2.9}`, cents: 290},
		{name: "integer", body: `{"price":10}`, cents: 1000},
		{name: "exponent", body: `{"price":1e2}`, cents: 10000},
		{name: "trailing zeros", body: `{"price":2.900}`, cents: 290},
		{name: "float artefact is not rounded", body: `{"price":5.800000000000001}`, fails: true, wantErr: money.ErrTooPrecise},
		{name: "string holding a number", body: `{"price":"2.9"}`, cents: 290},
		{name: "three decimals", body: `{"price":0.001}`, fails: true, wantErr: money.ErrTooPrecise},
		{name: "null", body: `{"price":null}`, fails: true},
		{name: "garbage string", body: `{"price":"abc"}`, fails: true},
		{name: "empty string", body: `{"price":""}`, fails: true},
		{name: "boolean", body: `{"price":true}`, fails: true},
		{name: "object", body: `{"price":{}}`, fails: true},
		{name: "overflow", body: `{"price":1e30}`, fails: true, wantErr: money.ErrOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got line
			err := json.Unmarshal([]byte(tt.body), &got)
			if !tt.fails {
				require.NoError(t, err)
				require.Equal(t, tt.cents, got.Price.Cents())
				return
			}
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		a, b     int64
		want     int64
		overflow bool
	}{
		{name: "cents", a: 10, b: 20, want: 30},
		{name: "zero", a: 0, b: 0, want: 0},
		{name: "negative", a: 10, b: -25, want: -15},
		{name: "up to max", a: math.MaxInt64 - 1, b: 1, want: math.MaxInt64},
		{name: "past max", a: math.MaxInt64, b: 1, overflow: true},
		{name: "max plus max", a: math.MaxInt64, b: math.MaxInt64, overflow: true},
		{name: "past min", a: math.MinInt64, b: -1, overflow: true},
		{name: "min plus min", a: math.MinInt64, b: math.MinInt64, overflow: true},
		{name: "max plus min", a: math.MaxInt64, b: math.MinInt64, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := money.FromCents(tt.a).Add(money.FromCents(tt.b))
			if tt.overflow {
				require.ErrorIs(t, err, money.ErrOutOfRange)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Cents())
		})
	}

	t.Run("exact decimal sum", func(t *testing.T) {
		t.Parallel()
		sum := money.FromCents(0)
		for range 3 {
			var err error
			sum, err = sum.Add(money.MustParse("0.1"))
			require.NoError(t, err)
		}
		sum, err := sum.Add(money.MustParse("0.2"))
		require.NoError(t, err)
		require.Equal(t, "0.5", sum.String())
	})
}

func TestMul(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		a, n     int64
		want     int64
		overflow bool
	}{
		{name: "price times quantity", a: 290, n: 2, want: 580},
		{name: "by zero", a: 290, n: 0, want: 0},
		{name: "max by zero", a: math.MaxInt64, n: 0, want: 0},
		{name: "by one", a: math.MaxInt64, n: 1, want: math.MaxInt64},
		{name: "by minus one", a: math.MaxInt64, n: -1, want: -math.MaxInt64},
		{name: "negative amount", a: -7, n: 3, want: -21},
		{name: "fits exactly", a: math.MaxInt64 / 2, n: 2, want: math.MaxInt64 - 1},
		{name: "overflows by one", a: math.MaxInt64/2 + 1, n: 2, overflow: true},
		{name: "negative overflow", a: -(math.MaxInt64/2 + 1), n: 2, overflow: true},
		{name: "negative factor overflow", a: math.MaxInt64/2 + 1, n: -2, overflow: true},
		{name: "large factor", a: 1_000_000_00, n: math.MaxInt64, overflow: true},
		{name: "min int factor", a: 1, n: math.MinInt64, overflow: true},
		{name: "max order line", a: 1_000_000_00, n: 10_000, want: 1_000_000_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := money.FromCents(tt.a).Mul(tt.n)
			if tt.overflow {
				require.ErrorIs(t, err, money.ErrOutOfRange)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got.Cents())
		})
	}
}

func TestIsPositive(t *testing.T) {
	t.Parallel()
	require.True(t, money.FromCents(1).IsPositive())
	require.False(t, money.FromCents(0).IsPositive())
	require.False(t, money.FromCents(-1).IsPositive())
}
