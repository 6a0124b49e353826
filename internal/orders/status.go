package orders

import "github.com/ordersvc/orders/gen/db"

// Status is an order's lifecycle state.
type Status = db.OrderStatus

// The order statuses.
const (
	StatusPending  = db.OrderStatusPENDING
	StatusPaid     = db.OrderStatusPAID
	StatusShipped  = db.OrderStatusSHIPPED
	StatusCanceled = db.OrderStatusCANCELED
)

// transitions lists, for each status, the statuses it may move to.
// SHIPPED and CANCELED are final.
var transitions = map[Status][]Status{
	StatusPending: {StatusPaid, StatusCanceled},
	StatusPaid:    {StatusShipped, StatusCanceled},
}

// CanTransition reports whether an order may move from one status to another.
// Staying in the same status is not a transition (the API treats it as a no-op).
func CanTransition(from, to Status) bool {
	for _, next := range transitions[from] {
		if next == to {
			return true
		}
	}
	return false
}

// sourcesOf returns the statuses from which `to` can be reached; the SQL
// update applies only while the order is in one of them.
func sourcesOf(to Status) []string {
	var from []string
	for _, s := range db.AllOrderStatusValues() {
		if CanTransition(s, to) {
			from = append(from, string(s))
		}
	}
	return from
}
