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
