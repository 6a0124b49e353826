package orders

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/money"
)

func item(productID int64, quantity int, price string) Item {
	return Item{ProductID: productID, Quantity: quantity, Price: money.MustParse(price)}
}

func TestTotal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		items []Item
		want  string
	}{
		{"one item", []Item{item(1, 1, "2.9")}, "2.9"},
		{"price times quantity", []Item{item(1, 2, "2.9")}, "5.8"},
		{"no float drift", []Item{item(1, 3, "0.1"), item(2, 1, "0.2")}, "0.5"},
		{"cents add up", []Item{item(1, 1, "0.01"), item(2, 1, "0.99")}, "1"},
		{"smallest", []Item{item(1, 1, "0.01")}, "0.01"},
		{"largest price", []Item{item(1, 1, "1000000")}, "1000000"},
		{"largest quantity", []Item{item(1, MaxQuantity, "0.01")}, "100"},
		{"same product twice", []Item{item(7, 1, "1.5"), item(7, 2, "1.5")}, "4.5"},
		{"most items", slices.Repeat([]Item{item(1, 1, "0.1")}, MaxItems), "10"},
		{"largest order", slices.Repeat([]Item{item(1, MaxQuantity, "1000000")}, MaxItems), "1000000000000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Total(tt.items)
			require.NoError(t, err)
			require.Equal(t, tt.want, got.String())
		})
	}
}

func TestTotalRejects(t *testing.T) {
	t.Parallel()
	valid := item(1, 1, "1")
	tests := []struct {
		name   string
		items  []Item
		fields []string
	}{
		{"nil items", nil, []string{"body.items"}},
		{"no items", []Item{}, []string{"body.items"}},
		{"too many items", slices.Repeat([]Item{valid}, MaxItems+1), []string{"body.items"}},
		{"quantity zero", []Item{item(1, 0, "1")}, []string{"body.items[0].quantity"}},
		{"quantity negative", []Item{item(1, -1, "1")}, []string{"body.items[0].quantity"}},
		{"quantity too large", []Item{valid, item(1, MaxQuantity+1, "1")}, []string{"body.items[1].quantity"}},
		{"price zero", []Item{valid, valid, item(1, 1, "0")}, []string{"body.items[2].price"}},
		{"price negative", []Item{item(1, 1, "-0.01")}, []string{"body.items[0].price"}},
		{"price over max", []Item{item(1, 1, "1000000.01")}, []string{"body.items[0].price"}},
		{"product id zero", []Item{item(0, 1, "1")}, []string{"body.items[0].product_id"}},
		{"product id negative", []Item{item(-5, 1, "1")}, []string{"body.items[0].product_id"}},
		{
			"every invalid item is reported",
			[]Item{item(1, 0, "1"), valid, item(1, 1, "0"), item(0, 1, "1")},
			[]string{"body.items[0].quantity", "body.items[2].price", "body.items[3].product_id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Total(tt.items)
			require.ErrorIs(t, err, apperr.ErrInvalid)
			require.Zero(t, got.Cents())
			var verr *apperr.ValidationError
			require.ErrorAs(t, err, &verr, "want a *apperr.ValidationError, got %T", err)
			fields := make([]string, 0, len(verr.Fields))
			for _, f := range verr.Fields {
				fields = append(fields, f.Field)
				require.NotEmpty(t, f.Message, f.Field)
			}
			require.Equal(t, tt.fields, fields)
		})
	}
}
