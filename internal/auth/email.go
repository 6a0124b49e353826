package auth

import (
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/ordersvc/orders/internal/apperr"
)

// maxEmailLen is the longest email, in characters, as the users table and
// the contract allow.
const maxEmailLen = 254

// normalizeEmail returns an email in the form it is stored and looked up
// in: trimmed and in Unicode NFKC, so that compatibility variants of the
// same text (full-width letters, ligatures, a no-break space) name one
// account. Letter case is kept; the database compares lower(email).
//
// An email holding white space, control, format (zero-width, bidi),
// private-use, unassigned or default-ignorable characters is refused with a
// field error naming field: such characters let two different addresses
// look alike, or one address read differently from how it is stored.
func normalizeEmail(field, email string) (string, error) {
	if !utf8.ValidString(email) {
		return "", apperr.Invalid(field, "must be valid UTF-8")
	}
	email = norm.NFKC.String(strings.TrimSpace(email))
	for _, r := range email {
		if unicode.IsSpace(r) || !unicode.IsGraphic(r) ||
			unicode.In(r, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) {
			return "", apperr.Invalid(field, fmt.Sprintf("must not contain spaces, invisible or control characters (found U+%04X)", r))
		}
	}
	return email, nil
}

// checkAddress refuses a normalised email that is no longer one bare
// address (NFKC turns "＠" into "@" and "‥" into "..") or is too long for
// the users table (NFKC can lengthen text).
func checkAddress(field, email string) error {
	if n := utf8.RuneCountInString(email); n > maxEmailLen {
		return apperr.Invalid(field, fmt.Sprintf("must be at most %d characters after Unicode normalisation (NFKC), got %d", maxEmailLen, n))
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return apperr.Invalid(field, "must be an email address such as alice@example.com")
	}
	return nil
}
