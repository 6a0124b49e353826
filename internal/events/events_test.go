package events

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/ordersvc/orders/money"
)

func TestDecodeHeadAndEventAgree(t *testing.T) {
	t.Parallel()
	order := Order{ID: uuid.Must(uuid.NewV7()), UserID: 7, Status: "pending",
		Items:      []Item{{ProductID: 1, Quantity: 2, Price: money.MustParse("9.99")}},
		TotalPrice: money.MustParse("19.98")}
	msg, err := NewOrderEvent(context.Background(), order)
	require.NoError(t, err)

	head, err := DecodeHead(msg)
	require.NoError(t, err)
	env, err := DecodeEvent(msg)
	require.NoError(t, err)
	require.Equal(t, Head{ID: env.ID, Type: TypeNewOrder, Version: EnvelopeVersion, OrderID: order.ID}, head)
	require.Equal(t, msg.UUID, head.ID.String(), "the event id is the message id")
	require.Equal(t, order, env.Order)

	task, err := NewProcessOrderTask(head, "req-1")
	require.NoError(t, err)
	decoded, err := DecodeProcessOrderTask(task)
	require.NoError(t, err)
	require.Equal(t, ProcessOrderTask{OrderID: order.ID, EventID: head.ID, Version: EnvelopeVersion}, decoded)
	again, err := NewProcessOrderTask(head, "req-2")
	require.NoError(t, err)
	require.Equal(t, task.UUID, again.UUID, "a redelivered event yields the same task id")
}

func TestUndecodableEvents(t *testing.T) {
	t.Parallel()
	id := uuid.Must(uuid.NewV7()).String()
	for name, payload := range map[string]string{
		"malformed JSON":      `{"id": "` + id + `", "type": "new_order"`,
		"other version":       `{"id": "` + id + `", "type": "new_order", "version": 2, "order": {"id": "` + id + `"}}`,
		"unknown type":        `{"id": "` + id + `", "type": "order_deleted", "version": 1, "order": {"id": "` + id + `"}}`,
		"no order id":         `{"id": "` + id + `", "type": "new_order", "version": 1, "order": {}}`,
		"order id not a uuid": `{"id": "` + id + `", "type": "new_order", "version": 1, "order": {"id": "42"}}`,
	} {
		t.Run(name, func(t *testing.T) {
			msg := message.NewMessage(id, []byte(payload))
			_, err := DecodeHead(msg)
			require.ErrorIs(t, err, ErrUndecodable)
			_, err = DecodeEvent(msg)
			require.ErrorIs(t, err, ErrUndecodable)
		})
	}
}

// benchEvent is a new_order event of a three-item order, as the API writes it.
func benchEvent(b *testing.B) *message.Message {
	b.Helper()
	order := Order{ID: uuid.Must(uuid.NewV7()), UserID: 7, Status: "pending", TotalPrice: money.MustParse("59.97"),
		Items: []Item{{ProductID: 1, Quantity: 1, Price: money.MustParse("9.99")}, {ProductID: 2, Quantity: 2, Price: money.MustParse("19.99")},
			{ProductID: 3, Quantity: 1, Price: money.MustParse("10.00")}}}
	msg, err := NewOrderEvent(context.Background(), order)
	require.NoError(b, err)
	return msg
}

// The workers decode every event's head and every task; the API encodes
// every event. go test -bench . -benchmem ./internal/events prints each
// one's cost.
func BenchmarkDecodeHead(b *testing.B) {
	msg := benchEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeHead(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeProcessOrderTask(b *testing.B) {
	head, err := DecodeHead(benchEvent(b))
	require.NoError(b, err)
	task, err := NewProcessOrderTask(head, "req-1")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeProcessOrderTask(task); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewOrderEvent(b *testing.B) {
	order := Order{ID: uuid.Must(uuid.NewV7()), UserID: 7, Status: "pending", TotalPrice: money.MustParse("59.97"),
		Items: []Item{{ProductID: 1, Quantity: 1, Price: money.MustParse("9.99")}, {ProductID: 2, Quantity: 2, Price: money.MustParse("19.99")},
			{ProductID: 3, Quantity: 1, Price: money.MustParse("10.00")}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewOrderEvent(ctx, order); err != nil {
			b.Fatal(err)
		}
	}
}
