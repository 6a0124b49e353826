package orders

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
)

func TestServiceListGarbageCursor(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)
	f.order(t, owner)

	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	id := uuid.NewString()
	micros := func(at time.Time) string { return strconv.FormatInt(at.UnixMicro(), 10) }
	valid := b64("1700000000000000." + id)
	flipped := valid[:len(valid)-1] + string(valid[len(valid)-1]+1) // stray bits in the last character
	tests := []struct {
		name   string
		cursor string
	}{
		{"not base64", "!!!not base64!!!"},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte("1700000000000000." + id))},
		{"stray bits in the last character", flipped},
		{"no separator", b64("1700000000000000")},
		{"time not a number", b64("yesterday." + id)},
		{"id not a uuid", b64("1700000000000000.not-a-uuid")},
		{"empty id", b64("1700000000000000.")},
		{"upper-case id", b64("1700000000000000." + strings.ToUpper(id))},
		{"id in braces", b64("1700000000000000.{" + id + "}")},
		{"time with a plus sign", b64("+1700000000000000." + id)},
		{"time with a leading zero", b64("01700000000000000." + id)},
		{"time with spaces", b64(" 1700000000000000." + id)},
		{"time too large for int64", b64("99999999999999999999." + id)},
		{"minimum int64", b64("-9223372036854775808." + id)},
		{"maximum int64", b64("9223372036854775807." + id)},
		{"before year 1", b64(micros(minCursorTime.Add(-time.Microsecond)) + "." + id)},
		{"after year 9999", b64(micros(maxCursorTime.Add(time.Microsecond)) + "." + id)},
		{"random bytes", base64.RawURLEncoding.EncodeToString([]byte{0xff, 0x00, 0x13, 0x37})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			page, err := f.svc.List(t.Context(), owner, owner, ListQuery{Limit: 10, Cursor: tt.cursor})
			require.ErrorIs(t, err, apperr.ErrInvalid, "listed %d orders", len(page.Orders))
			var verr *apperr.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, "query.cursor", verr.Fields[0].Field)
		})
	}
}

// The ends of the cursor range reach PostgreSQL as the times they name: the
// latest lists every order, the earliest none.
func TestServiceListCursorAtTheEndsOfItsRange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	owner := f.user(t)
	o := f.order(t, owner)

	page, err := f.svc.List(t.Context(), owner, owner, ListQuery{Limit: 10, Cursor: encodeCursor(maxCursorTime, uuid.Max)})
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{o.ID}, ids(page.Orders))

	page, err = f.svc.List(t.Context(), owner, owner, ListQuery{Limit: 10, Cursor: encodeCursor(minCursorTime, uuid.Nil)})
	require.NoError(t, err)
	require.Empty(t, page.Orders)
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	for _, at := range []time.Time{
		time.Date(2026, 11, 26, 12, 30, 45, 123456000, time.UTC),
		time.Unix(0, 0).UTC(),
		minCursorTime,
		maxCursorTime,
	} {
		gotAt, gotID, err := decodeCursor(encodeCursor(at, id))
		require.NoError(t, err, at)
		require.True(t, at.Equal(gotAt), "%s != %s", at, gotAt)
		require.Equal(t, id, gotID)
	}
}

// FuzzDecodeCursor: whatever decodeCursor accepts is a cursor encodeCursor
// writes, naming a time in range; everything else is a field error; nothing
// panics. Without -fuzz it runs the seeds in testdata/fuzz/FuzzDecodeCursor.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(time.Date(2026, 11, 26, 12, 30, 45, 123456000, time.UTC), uuid.New()))
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := decodeCursor(c)
		if err != nil {
			var verr *apperr.ValidationError
			if !errors.As(err, &verr) || verr.Fields[0].Field != "query.cursor" {
				t.Fatalf("decodeCursor(%q) failed with %v, not a query.cursor field error", c, err)
			}
			return
		}
		if at.Before(minCursorTime) || at.After(maxCursorTime) {
			t.Fatalf("decodeCursor(%q) = %s, out of range", c, at)
		}
		if again := encodeCursor(at, id); again != c {
			t.Fatalf("decodeCursor(%q) accepted another spelling of %q", c, again)
		}
	})
}
