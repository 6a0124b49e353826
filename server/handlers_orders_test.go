package main

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/gen/api"
	"github.com/ordersvc/orders/internal/orders"
	"github.com/ordersvc/orders/money"
)

// TestEncodedOrderIsTheGeneratedAnswer: the 200 GetOrder writes from
// encoded bytes is the generated response's, headers and body byte for byte.
func TestEncodedOrderIsTheGeneratedAnswer(t *testing.T) {
	t.Parallel()
	processed := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for name, o := range map[string]orders.Order{
		"processed": {
			ID: uuid.New(), UserID: 7, Status: orders.StatusPaid, Version: 3, TotalPrice: money.MustParse("15.85"),
			Items:     []orders.Item{{ProductID: 42, Quantity: 2, Price: money.MustParse("2.9")}, {ProductID: 7, Quantity: 1, Price: money.MustParse("10.05")}},
			CreatedAt: processed.Add(-time.Minute), UpdatedAt: processed, ProcessedAt: &processed,
		},
		"pending <&> html-ish": {ID: uuid.New(), UserID: 1, Status: orders.StatusPending, Version: 1, TotalPrice: money.MustParse("0.01"),
			Items: []orders.Item{{ProductID: 1, Quantity: 1, Price: money.MustParse("0.01")}}, CreatedAt: processed, UpdatedAt: processed},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := httptest.NewRecorder()
			require.NoError(t, api.GetOrder200JSONResponse{Body: toAPIOrder(o), Headers: api.GetOrder200ResponseHeaders{ETag: etagOf(o.Version)}}.VisitGetOrderResponse(want))
			body, err := encodeOrder(o)
			require.NoError(t, err)
			got := httptest.NewRecorder()
			require.NoError(t, encodedOrder200{body: body, etag: etagOf(o.Version)}.VisitGetOrderResponse(got))
			require.Equal(t, want.Code, got.Code)
			require.Equal(t, want.Header(), got.Header())
			require.Equal(t, want.Body.String(), got.Body.String())
		})
	}
}
