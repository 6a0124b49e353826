package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"alice@example.com", "alice@example.com"},
		{"  Alice@Example.com\t", "Alice@Example.com"},
		{"alice@example.com\u00a0", "alice@example.com"}, // no-break space, trimmed
		{"\u3000alice@example.com", "alice@example.com"}, // ideographic space, trimmed
		{"ＡＬＩＣＥ@example.com", "ALICE@example.com"},       // full-width letters
		{"alice＠example.com", "alice@example.com"},       // full-width at sign
		{"ﬁnance@example.com", "finance@example.com"},    // ligature
		{"ünï-cödé@例え.jp", "ünï-cödé@例え.jp"},             // composed letters stay as they are
		{"u\u0308@example.com", "ü@example.com"},         // a decomposed ü is composed
	}
	for _, tt := range tests {
		got, err := normalizeEmail("body.email", tt.in)
		require.NoError(t, err, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
}

func TestNormalizeEmailRefusesInvisibleCharacters(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"zero-width space U+200B":             "alice\u200b@example.com",
		"zero-width joiner U+200D":            "ali\u200dce@example.com",
		"right-to-left override U+202E":       "\u202ealice@example.com",
		"left-to-right mark U+200E":           "alice@example.com\u200e",
		"byte order mark U+FEFF":              "\ufeffalice@example.com",
		"word joiner U+2060":                  "alice\u2060@example.com",
		"soft hyphen U+00AD":                  "al\u00adice@example.com",
		"Arabic letter mark U+061C":           "alice\u061c@example.com",
		"tag character U+E0041":               "alice\U000e0041@example.com",
		"combining grapheme joiner U+034F":    "alice\u034f@example.com",
		"Hangul filler U+3164":                "alice\u3164@example.com",
		"variation selector U+FE0F":           "alice\ufe0f@example.com",
		"NUL":                                 "ali\x00ce@example.com",
		"bell":                                "ali\ace@example.com",
		"line separator U+2028":               "alice\u2028@example.com",
		"private use U+E000":                  "alice\ue000@example.com",
		"unassigned U+0378":                   "alice\u0378@example.com",
		"space inside":                        "ali ce@example.com",
		"no-break space inside, NFKC a space": "ali\u00a0ce@example.com",
		"diaeresis, NFKC a space and a mark":  "\u00a8alice@example.com",
		"invalid UTF-8":                       "\xff\xfe@example.com",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeEmail("body.username", in)
			require.ErrorIs(t, err, apperr.ErrInvalid, "accepted as %q", got)
			var verr *apperr.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, "body.username", verr.Fields[0].Field)
		})
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	long := func(n int) string { return strings.Repeat("㌀", n) + "@example.com" } // NFKC: 4 characters each
	for _, ok := range []string{"alice@example.com", "a@b", long(60)} {
		email, err := normalizeEmail("body.email", ok)
		require.NoError(t, err)
		require.NoError(t, checkAddress("body.email", email), "%q", email)
	}
	for name, in := range map[string]string{
		"two at signs after NFKC":       "a＠b@example.com",
		"two dots after NFKC":           "alice‥x@example.com",
		"angle brackets after NFKC":     "＜alice@example.com＞",
		"no at sign":                    "alice.example.com",
		"255 characters after NFKC":     long(61),
		"display name":                  `"Alice"alice@example.com`,
		"too short for the users table": "ab",
	} {
		email, err := normalizeEmail("body.email", in)
		require.NoError(t, err, "%q", in)
		err = checkAddress("body.email", email)
		require.ErrorIs(t, err, apperr.ErrInvalid, "%s: %q", name, email)
	}
}
