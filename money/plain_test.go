package money

import (
	"math/big"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fast path for plain decimals agrees with the exact general path.
func TestPlainParseAgreesWithGeneral(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"0", "7", "2.9", "2.90", "0.05", "-3.5", "999999999999999", "1000000", "10.05"} {
		fast, ok := parsePlain(s)
		require.True(t, ok, s)
		r, ok := new(big.Rat).SetString(s)
		require.True(t, ok)
		r.Mul(r, big.NewRat(100, 1))
		require.Equal(t, r.Num().Int64(), fast.Cents(), s)
	}
	for _, s := range []string{"", ".5", "5.", "1e2", "0x10", "1.234", "+1", "1_0", " 1", "9999999999999999"} {
		_, ok := parsePlain(s)
		require.False(t, ok, "%q must take the general path", s)
	}
}
