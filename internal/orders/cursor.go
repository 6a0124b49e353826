package orders

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/internal/apperr"
)

// A cursor names the last order of a page: its created_at in Unix
// microseconds and its id, as "micros.id" in unpadded base64url.

// Cursor times lie in years 1 to 9999, the range RFC 3339 writes. Every
// created_at does; beyond it pgx's timestamptz arithmetic wraps, so a cursor
// naming -2^63 microseconds would reach PostgreSQL as a time in the far
// future and list the first page again.
var (
	minCursorTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxCursorTime = time.Date(9999, 12, 31, 23, 59, 59, 999_999_000, time.UTC)
)

func encodeCursor(at time.Time, id uuid.UUID) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at.UnixMicro(), 10) + "." + id.String()))
}

// decodeCursor accepts only what encodeCursor writes: another spelling of
// the same position ("+5", "05", padding, upper-case hex, stray base64 bits)
// or a time out of range is not a cursor from a Link header.
func decodeCursor(c string) (time.Time, uuid.UUID, error) {
	invalid := apperr.Invalid("query.cursor", "not a cursor from a Link header")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, uuid.UUID{}, invalid
	}
	micros, idText, ok := strings.Cut(string(raw), ".")
	if !ok {
		return time.Time{}, uuid.UUID{}, invalid
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || us < minCursorTime.UnixMicro() || us > maxCursorTime.UnixMicro() {
		return time.Time{}, uuid.UUID{}, invalid
	}
	id, err := uuid.Parse(idText)
	if err != nil {
		return time.Time{}, uuid.UUID{}, invalid
	}
	at := time.UnixMicro(us).UTC()
	if encodeCursor(at, id) != c {
		return time.Time{}, uuid.UUID{}, invalid
	}
	return at, id, nil
}
