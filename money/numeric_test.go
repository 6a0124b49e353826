package money_test

import (
	"context"
	"math"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/testkit/testdb"
	"github.com/ordersvc/orders/money"
)

// connect returns a connection to a fresh database with a table holding both
// the column type orders use (NUMERIC(16,2)) and an unconstrained NUMERIC, so
// that values PostgreSQL would refuse in the real column can still be read back.
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, testdb.New(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, `CREATE TABLE amounts (id int PRIMARY KEY, fixed NUMERIC(16, 2), free NUMERIC)`)
	require.NoError(t, err)
	return conn
}

func TestNumericRoundTrip(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	ctx := t.Context()

	values := []string{"0", "0.05", "0.5", "5", "5.8", "19.99", "2.9", "1000000", "-3.1", "99999999999999.99"}
	for i, s := range values {
		in := money.MustParse(s)
		_, err := conn.Exec(ctx, `INSERT INTO amounts (id, fixed, free) VALUES ($1, $2, $2)`, i, in)
		require.NoError(t, err, "insert %s", s)

		var fixed, free money.Amount
		var text string
		err = conn.QueryRow(ctx, `SELECT fixed, free, fixed::text FROM amounts WHERE id = $1`, i).Scan(&fixed, &free, &text)
		require.NoError(t, err, "select %s", s)
		require.Equal(t, in, fixed, "NUMERIC(16,2) %s", s)
		require.Equal(t, in, free, "NUMERIC %s", s)
		// PostgreSQL holds the exact decimal, not a float approximation.
		require.Equal(t, money.MustParse(text), in, "stored as %s", text)
	}

	t.Run("arithmetic in SQL agrees", func(t *testing.T) {
		var sum money.Amount
		require.NoError(t, conn.QueryRow(ctx, `SELECT $1::numeric * 3 + $2::numeric`,
			money.MustParse("0.1"), money.MustParse("0.2")).Scan(&sum))
		require.Equal(t, "0.5", sum.String())
	})

	t.Run("larger than the fixed column", func(t *testing.T) {
		big := money.FromCents(math.MaxInt64)
		var got money.Amount
		require.NoError(t, conn.QueryRow(ctx, `SELECT $1::numeric`, big).Scan(&got))
		require.Equal(t, big, got)

		_, err := conn.Exec(ctx, `INSERT INTO amounts (id, fixed) VALUES (1000, $1)`, big)
		require.Error(t, err, "NUMERIC(16,2) must refuse an amount it cannot hold")
	})
}

func TestScanNumeric(t *testing.T) {
	t.Parallel()
	conn := connect(t)

	tests := []struct {
		expr    string
		want    string // amount expected when the scan succeeds
		wantErr error  // nil with fails: any error
		fails   bool
	}{
		{expr: `100::numeric`, want: "100"},
		{expr: `'1e2'::numeric`, want: "100"},
		{expr: `'1.50'::numeric`, want: "1.5"},
		{expr: `'1.5000000'::numeric`, want: "1.5"},
		{expr: `'0.05'::numeric`, want: "0.05"},
		{expr: `'-42.42'::numeric`, want: "-42.42"},
		{expr: `'12345678901234567'::numeric`, want: "12345678901234567"},
		{expr: `'1.005'::numeric`, fails: true, wantErr: money.ErrTooPrecise},
		{expr: `'1e30'::numeric`, fails: true, wantErr: money.ErrOutOfRange},
		{expr: `'92233720368547758.08'::numeric`, fails: true, wantErr: money.ErrOutOfRange},
		{expr: `'NaN'::numeric`, fails: true},
		{expr: `'Infinity'::numeric`, fails: true},
		{expr: `NULL::numeric`, fails: true},
	}
	for _, tt := range tests {
		var got money.Amount
		err := conn.QueryRow(t.Context(), "SELECT "+tt.expr).Scan(&got)
		if !tt.fails {
			require.NoError(t, err, tt.expr)
			require.Equal(t, tt.want, got.String(), tt.expr)
			continue
		}
		require.Error(t, err, "%s scanned as %s", tt.expr, got)
		if tt.wantErr != nil {
			require.ErrorIs(t, err, tt.wantErr, tt.expr)
		}
	}
}

func TestNumericValue(t *testing.T) {
	t.Parallel()
	n, err := money.MustParse("5.8").NumericValue()
	require.NoError(t, err)
	require.True(t, n.Valid)
	require.Equal(t, int32(-2), n.Exp)
	require.Equal(t, int64(580), n.Int.Int64())

	var a money.Amount
	require.NoError(t, a.ScanNumeric(n))
	require.Equal(t, "5.8", a.String())

	require.Error(t, a.ScanNumeric(pgtype.Numeric{}), "NULL")
	require.Error(t, a.ScanNumeric(pgtype.Numeric{NaN: true, Valid: true}), "NaN")
	require.Error(t, a.ScanNumeric(pgtype.Numeric{InfinityModifier: pgtype.Infinity, Valid: true}), "Infinity")
}
