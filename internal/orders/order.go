// Package orders holds the order domain: exact totals, the status machine and
// the transactions that persist them.
package orders

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/apperr"
	"github.com/ordersvc/orders/internal/events"
	"github.com/ordersvc/orders/money"
)

// Limits of an order, mirrored in openapi.yaml.
const (
	MaxItems    = 100
	MaxQuantity = 10_000
	MaxPageSize = 100
)

// MaxPrice is the largest accepted unit price.
var MaxPrice = money.FromCents(1_000_000_00)

// Item is one line of an order.
type Item struct {
	ProductID int64        `json:"product_id"`
	Quantity  int          `json:"quantity"`
	Price     money.Amount `json:"price"`
}

// Order is a user's order.
type Order struct {
	ID          uuid.UUID
	UserID      int64
	Items       []Item
	TotalPrice  money.Amount
	Status      Status
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ProcessedAt *time.Time
	// Version is incremented by every write of the order; it is the ETag.
	Version int64
}

// Total validates the items and returns the exact sum of price x quantity.
func Total(items []Item) (money.Amount, error) {
	if len(items) == 0 || len(items) > MaxItems {
		return money.Amount{}, apperr.Invalid("body.items", fmt.Sprintf("must hold 1 to %d items", MaxItems))
	}
	var verr apperr.ValidationError
	total := money.FromCents(0)
	for i, it := range items {
		field := fmt.Sprintf("body.items[%d]", i)
		switch {
		case it.ProductID < 1:
			verr.Fields = append(verr.Fields, apperr.FieldError{Field: field + ".product_id", Message: "must be at least 1"})
		case it.Quantity < 1 || it.Quantity > MaxQuantity:
			verr.Fields = append(verr.Fields, apperr.FieldError{Field: field + ".quantity", Message: fmt.Sprintf("must be between 1 and %d", MaxQuantity)})
		case !it.Price.IsPositive() || it.Price.Cents() > MaxPrice.Cents():
			verr.Fields = append(verr.Fields, apperr.FieldError{Field: field + ".price", Message: "must be greater than 0 and at most " + MaxPrice.String()})
		default:
			line, err := it.Price.Mul(int64(it.Quantity))
			if err == nil {
				total, err = total.Add(line)
			}
			if err != nil {
				return money.Amount{}, apperr.Invalid(field, "total out of range")
			}
		}
	}
	if len(verr.Fields) > 0 {
		return money.Amount{}, &verr
	}
	return total, nil
}

// fromRow converts a database row into an Order.
func fromRow(row db.Order) (Order, error) {
	var items []Item
	if err := json.Unmarshal(row.Items, &items); err != nil {
		return Order{}, fmt.Errorf("decode items of order %s: %w", row.ID, err)
	}
	// In UTC whatever the host's zone (pgx returns time.Local): one version
	// of an order has one representation, wherever it was read from.
	var processedAt *time.Time
	if row.ProcessedAt != nil {
		at := row.ProcessedAt.UTC()
		processedAt = &at
	}
	return Order{
		ID:          row.ID,
		UserID:      row.UserID,
		Items:       items,
		TotalPrice:  row.TotalPrice,
		Status:      row.Status,
		CreatedAt:   row.CreatedAt.UTC(),
		UpdatedAt:   row.UpdatedAt.UTC(),
		ProcessedAt: processedAt,
		Version:     row.Version,
	}, nil
}

// event returns the order as carried in events.
func (o Order) event() events.Order {
	items := make([]events.Item, len(o.Items))
	for i, it := range o.Items {
		items[i] = events.Item{ProductID: it.ProductID, Quantity: it.Quantity, Price: it.Price}
	}
	return events.Order{ID: o.ID, UserID: o.UserID, Items: items, TotalPrice: o.TotalPrice, Status: string(o.Status)}
}
