package forwarder

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// PipelinedPublisher is a Watermill publisher that does not wait for each
// message's confirm: Publish hands the message to RabbitMQ and returns, and
// Confirmed waits for the confirms of everything published since its last
// call. A caller that needs a batch to be durable before it moves on (the
// outbox forwarder, before it marks the batch's rows as forwarded) publishes
// the batch, then calls Confirmed: one round trip per batch instead of one
// per message.
//
// It is meant for one goroutine at a time (one forwarder); it shares its
// connection, which reconnects on its own, with the other forwarders. The
// wire format, exchange names and routing keys are those of config, so
// consumers cannot tell its messages from those of amqp.Publisher.
type PipelinedPublisher struct {
	conn   *amqp.ConnectionWrapper
	config amqp.Config
	logger watermill.LoggerAdapter

	mu       sync.Mutex
	ch       *amqp091.Channel
	declared map[string]bool // exchanges declared on ch
	pending  []*amqp091.DeferredConfirmation
}

// NewPipelinedPublisher publishes through conn with config's topology.
func NewPipelinedPublisher(conn *amqp.ConnectionWrapper, config amqp.Config, logger watermill.LoggerAdapter) *PipelinedPublisher {
	return &PipelinedPublisher{conn: conn, config: config, logger: logger}
}

// ErrNotConfirmed means RabbitMQ refused a message or the channel closed
// before it confirmed it: the message may or may not have been delivered.
var ErrNotConfirmed = errors.New("RabbitMQ did not confirm every message")

// Publish sends msgs to topic's exchange without waiting for their confirms.
// An error means some of msgs may not have been sent; Confirmed then fails
// too, as the channel they went out on is dropped.
func (p *PipelinedPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, err := p.channel()
	if err != nil {
		return err
	}
	exchange := p.config.Exchange.GenerateName(topic)
	if exchange != "" && !p.declared[exchange] {
		if err := p.config.TopologyBuilder.ExchangeDeclare(ch, exchange, p.config); err != nil {
			p.dropChannel()
			return fmt.Errorf("declare exchange %s: %w", exchange, err)
		}
		p.declared[exchange] = true
	}
	key := p.config.Publish.GenerateRoutingKey(topic)
	for _, msg := range msgs {
		publishing, err := p.config.Marshaler.Marshal(msg)
		if err != nil {
			return fmt.Errorf("marshal message %s: %w", msg.UUID, err)
		}
		confirm, err := ch.PublishWithDeferredConfirmWithContext(msg.Context(), exchange, key,
			p.config.Publish.Mandatory, p.config.Publish.Immediate, publishing)
		if err != nil {
			p.dropChannel()
			return fmt.Errorf("publish message %s: %w", msg.UUID, err)
		}
		p.pending = append(p.pending, confirm)
	}
	return nil
}

// Confirmed waits until RabbitMQ has confirmed every message published since
// the previous call. It fails with ErrNotConfirmed when any was refused or
// lost with its channel, and with ctx's error when ctx ends first; either
// way those messages count as not delivered and are no longer waited for.
func (p *PipelinedPublisher) Confirmed(ctx context.Context) error {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	refused := 0
	for i, c := range pending {
		ok, err := c.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("waiting for %d confirms: %w", len(pending)-i, err)
		}
		if !ok {
			refused++
		}
	}
	if refused > 0 {
		return fmt.Errorf("%w: %d of %d", ErrNotConfirmed, refused, len(pending))
	}
	return nil
}

// Close closes the channel; the shared connection is the caller's to close.
func (p *PipelinedPublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropChannel()
	return nil
}

// channel returns the open confirm-mode channel, opening one when the last
// closed (broker restart, connection loss).
func (p *PipelinedPublisher) channel() (*amqp091.Channel, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	p.ch = nil
	if !p.conn.IsConnected() {
		return nil, errors.New("not connected to RabbitMQ")
	}
	ch, err := p.conn.Connection().Channel()
	if err != nil {
		return nil, fmt.Errorf("open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, fmt.Errorf("confirm mode: %w", err)
	}
	p.ch, p.declared = ch, map[string]bool{}
	return ch, nil
}

// dropChannel closes the channel, which settles its unconfirmed messages as
// refused.
func (p *PipelinedPublisher) dropChannel() {
	if p.ch != nil {
		_ = p.ch.Close()
		p.ch = nil
	}
}
