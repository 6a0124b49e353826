// Package events defines the messages that cross process boundaries: the
// domain events published through the outbox, and the background tasks.
// Both are versioned JSON. Decoding tolerates added fields (a newer producer
// of the same version) but rejects malformed JSON, unknown types and other
// versions at once, so such a message goes to the dead-letter queue instead of
// being half-applied or retried in vain.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/google/uuid"

	"github.com/ordersvc/orders/internal/requestid"
	"github.com/ordersvc/orders/internal/telemetry"
	"github.com/ordersvc/orders/money"
)

// Topics. The AMQP layer adds a per-deployment namespace to each.
const (
	TopicNewOrder           = "new_order"
	TopicOrderStatusChanged = "order_status_changed"
	TopicProcessOrder       = "process_order"
	TopicDeadLetters        = "dead_letters"
)

// Event types and the envelope version this code writes and reads.
const (
	TypeNewOrder           = "new_order"
	TypeOrderStatusChanged = "order_status_changed"
	EnvelopeVersion        = 1
)

// MetadataRequestID is the message metadata key carrying the HTTP request id.
const MetadataRequestID = "request_id"

// ErrUndecodable marks a message that can never be processed; handlers do
// not retry it.
var ErrUndecodable = errors.New("undecodable message")

// Item is one order line as carried in events.
type Item struct {
	ProductID int64        `json:"product_id"`
	Quantity  int          `json:"quantity"`
	Price     money.Amount `json:"price"`
}

// Order is the order as carried in events.
type Order struct {
	ID         uuid.UUID    `json:"id"`
	UserID     int64        `json:"user_id"`
	Items      []Item       `json:"items"`
	TotalPrice money.Amount `json:"total_price"`
	Status     string       `json:"status"`
}

// Envelope is an event: id equals the Watermill message UUID.
type Envelope struct {
	ID             uuid.UUID `json:"id"`
	Type           string    `json:"type"`
	Version        int       `json:"version"`
	OccurredAt     time.Time `json:"occurred_at"`
	Order          Order     `json:"order"`
	PreviousStatus string    `json:"previous_status,omitempty"`
}

// NewOrderEvent builds the message announcing a new order.
func NewOrderEvent(ctx context.Context, o Order) (*message.Message, error) {
	return newEvent(ctx, Envelope{Type: TypeNewOrder, Order: o})
}

// StatusChangedEvent builds the message announcing a status change.
func StatusChangedEvent(ctx context.Context, o Order, previous string) (*message.Message, error) {
	return newEvent(ctx, Envelope{Type: TypeOrderStatusChanged, Order: o, PreviousStatus: previous})
}

func newEvent(ctx context.Context, env Envelope) (*message.Message, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return nil, fmt.Errorf("new event id: %w", err)
	}
	env.ID, env.Version, env.OccurredAt = id, EnvelopeVersion, time.Now().UTC()
	payload, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", env.Type, err)
	}
	msg := message.NewMessage(id.String(), payload)
	if rid := requestid.From(ctx); rid != "" {
		msg.Metadata.Set(MetadataRequestID, rid)
	}
	telemetry.Inject(ctx, msg) // the event continues the request's trace
	return msg, nil
}

// DecodeEvent reads an event envelope, rejecting unknown types and versions.
func DecodeEvent(msg *message.Message) (Envelope, error) {
	var env Envelope
	if err := decode(msg.Payload, &env); err != nil {
		return Envelope{}, err
	}
	if err := (Head{ID: env.ID, Type: env.Type, Version: env.Version, OrderID: env.Order.ID}).validate(); err != nil {
		return Envelope{}, err
	}
	return env, nil
}

// Head is the part of an event that routing it needs: which event, of what
// type, about which order.
type Head struct {
	ID      uuid.UUID
	Type    string
	Version int
	OrderID uuid.UUID
}

// DecodeHead reads an event's head, with the checks of DecodeEvent, without
// decoding the order's items and amounts: starting an order's processing
// needs only its id, and a full decode would be most of that handler's CPU.
func DecodeHead(msg *message.Message) (Head, error) {
	var wire struct {
		ID      uuid.UUID `json:"id"`
		Type    string    `json:"type"`
		Version int       `json:"version"`
		Order   struct {
			ID uuid.UUID `json:"id"`
		} `json:"order"`
	}
	if err := decode(msg.Payload, &wire); err != nil {
		return Head{}, err
	}
	h := Head{ID: wire.ID, Type: wire.Type, Version: wire.Version, OrderID: wire.Order.ID}
	return h, h.validate()
}

func (h Head) validate() error {
	switch {
	case h.Version != EnvelopeVersion:
		return fmt.Errorf("%w: event version %d, want %d", ErrUndecodable, h.Version, EnvelopeVersion)
	case h.Type != TypeNewOrder && h.Type != TypeOrderStatusChanged:
		return fmt.Errorf("%w: unknown event type %q", ErrUndecodable, h.Type)
	case h.OrderID == uuid.Nil:
		return fmt.Errorf("%w: event without order id", ErrUndecodable)
	}
	return nil
}

// ProcessOrderTask asks the task handler to process one order.
type ProcessOrderTask struct {
	OrderID uuid.UUID `json:"order_id"`
	EventID uuid.UUID `json:"event_id"` // the new_order event that started it
	Version int       `json:"version"`
}

// processTaskNamespace derives task ids from event ids: a redelivered event
// yields the same task id, which the task handler's inbox recognises.
var processTaskNamespace = uuid.MustParse("5a0c4f8e-8f0e-4d7c-9a57-2b1d3f3e6c10")

// NewProcessOrderTask builds the task message for an order's new_order event.
func NewProcessOrderTask(event Head, requestID string) (*message.Message, error) {
	task := ProcessOrderTask{OrderID: event.OrderID, EventID: event.ID, Version: EnvelopeVersion}
	payload, err := json.Marshal(task)
	if err != nil {
		return nil, fmt.Errorf("encode process_order task: %w", err)
	}
	id := uuid.NewSHA1(processTaskNamespace, event.ID[:])
	msg := message.NewMessage(id.String(), payload)
	if requestID != "" {
		msg.Metadata.Set(MetadataRequestID, requestID)
	}
	return msg, nil
}

// DecodeProcessOrderTask reads a task, rejecting anything malformed.
func DecodeProcessOrderTask(msg *message.Message) (ProcessOrderTask, error) {
	var task ProcessOrderTask
	if err := decode(msg.Payload, &task); err != nil {
		return ProcessOrderTask{}, err
	}
	if task.Version != EnvelopeVersion || task.OrderID == uuid.Nil {
		return ProcessOrderTask{}, fmt.Errorf("%w: process_order task version %d, order %s", ErrUndecodable, task.Version, task.OrderID)
	}
	return task, nil
}

// decode reads payload into v with JSON v2, which reads a message in one
// pass with almost no allocation (encoding/json validates it whole first,
// then decodes). It is also stricter, which suits messages we write
// ourselves: member names match exactly, and a duplicate name or invalid
// UTF-8 makes the message undecodable.
func decode(payload []byte, v any) error {
	if err := jsonv2.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	return nil
}
