package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ordersvc/orders/internal/messaging"
)

// runCommand runs an operator command instead of the workers.
func runCommand(ctx context.Context, args []string, topo messaging.Topology, stdout io.Writer) error {
	switch {
	case len(args) == 2 && args[0] == "dlq" && args[1] == "list":
		return listDeadLetters(ctx, topo, stdout)
	case len(args) == 2 && args[0] == "dlq" && args[1] == "replay":
		return replayDeadLetters(ctx, topo, stdout)
	default:
		return fmt.Errorf("unknown arguments %q; usage: workers [dlq list | dlq replay]", args)
	}
}

// DeadLetter is one line of `workers dlq list` (JSON lines on stdout).
type DeadLetter struct {
	MessageID string          `json:"message_id"`
	Topic     string          `json:"topic"`
	Handler   string          `json:"handler"`
	Reason    string          `json:"reason"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	Raw       string          `json:"raw,omitempty"` // the payload when it is not JSON
}

// listDeadLetters prints every dead letter and leaves them all queued: they
// are fetched without ack and return to the queue when the channel closes.
func listDeadLetters(ctx context.Context, topo messaging.Topology, stdout io.Writer) error {
	return withDeadLetters(ctx, topo, func(_ *amqp091.Channel, d amqp091.Delivery) error {
		return json.NewEncoder(stdout).Encode(describe(topo, d))
	}, false)
}

// replayDeadLetters sends each dead letter back to the queue of the handler
// that gave up on it, with its original id and metadata, and acks it only
// once the broker confirmed the copy.
func replayDeadLetters(ctx context.Context, topo messaging.Topology, stdout io.Writer) error {
	replayed := 0
	err := withDeadLetters(ctx, topo, func(ch *amqp091.Channel, d amqp091.Delivery) error {
		dl := describe(topo, d)
		route, ok := topo.Table().Lookup(dl.Handler)
		if !ok || route.Topic != dl.Topic {
			return fmt.Errorf("dead letter %s names no known route (topic %q, handler %q); left in the queue", dl.MessageID, dl.Topic, dl.Handler)
		}
		headers := amqp091.Table{}
		for k, v := range d.Headers {
			switch k {
			case middleware.ReasonForPoisonedKey, middleware.PoisonedTopicKey, middleware.PoisonedHandlerKey, middleware.PoisonedSubscriberKey,
				messaging.DeadLetterHandlerKey:
			default:
				// The broker's own headers (x-death, x-delivery-count on a
				// letter a quorum queue parked) stay with the letter.
				if !strings.HasPrefix(k, "x-") {
					headers[k] = v
				}
			}
		}
		// Straight to the route's queue through the default exchange: an
		// event published to its exchange again would reach every other
		// handler of the topic too.
		confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", topo.Queue(route), true, false, amqp091.Publishing{
			Headers:      headers,
			ContentType:  d.ContentType,
			DeliveryMode: amqp091.Persistent,
			Body:         d.Body,
		})
		if err != nil {
			return fmt.Errorf("replay %s: %w", dl.MessageID, err)
		}
		if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("replay %s: broker did not confirm: %w", dl.MessageID, errors.Join(err))
		}
		if err := d.Ack(false); err != nil {
			return fmt.Errorf("replay %s: ack: %w", dl.MessageID, err)
		}
		replayed++
		return nil
	}, true)
	fmt.Fprintf(stdout, "replayed %d dead letters\n", replayed)
	return err
}

// withDeadLetters fetches the dead letters one by one (basic.get, no ack),
// calling fn for each, until it has seen as many as the queue held when it
// began or the queue is empty: a replayed letter that fails again while the
// workers run is parked anew, and is not replayed a second time by the
// same command.
func withDeadLetters(ctx context.Context, topo messaging.Topology, fn func(*amqp091.Channel, amqp091.Delivery) error, confirms bool) error {
	conn, err := topo.Dial()
	if err != nil {
		return fmt.Errorf("connect to AMQP_URL: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	if confirms {
		if err := ch.Confirm(false); err != nil {
			return fmt.Errorf("enable confirms: %w", err)
		}
	}
	queue := topo.Queue(messaging.DeadLetters)
	// Declared as the workers declare it, so listing works before any dead letter exists.
	q, err := ch.QueueDeclare(queue, true, false, false, false, topo.QueueArguments(messaging.DeadLetters))
	if err != nil {
		return fmt.Errorf("declare %s: %w", queue, err)
	}
	for range q.Messages {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, ok, err := ch.Get(queue, false)
		if err != nil {
			return fmt.Errorf("get from %s: %w", queue, err)
		}
		if !ok {
			return nil
		}
		if err := fn(ch, d); err != nil {
			return err
		}
	}
	return nil
}

func describe(topo messaging.Topology, d amqp091.Delivery) DeadLetter {
	header := func(k string) string {
		if v, ok := d.Headers[k].(string); ok {
			return v
		}
		return ""
	}
	dl := DeadLetter{
		MessageID: header(amqp.DefaultMessageUUIDHeaderKey),
		Topic:     header(middleware.PoisonedTopicKey),
		Handler:   header(messaging.DeadLetterHandlerKey),
		Reason:    header(middleware.ReasonForPoisonedKey),
	}
	// A letter parked before the workers named its route's handler carries
	// only the instance's name; the topic tells its route when the topic
	// has a single consumer.
	if consumers := messaging.Consumers(dl.Topic); dl.Handler == "" && len(consumers) == 1 {
		dl.Handler = consumers[0].Handler
	}
	// A letter the broker parked (a quorum queue's delivery limit) names
	// the queue it came from.
	if queue := header("x-first-death-queue"); dl.Handler == "" && queue != "" {
		for _, r := range messaging.Routes {
			if topo.Queue(r) == queue {
				dl.Topic, dl.Handler = r.Topic, r.Handler
				dl.Reason = fmt.Sprintf("RabbitMQ: %s (delivered %d times without an ack)", header("x-first-death-reason"), messaging.DeliveryLimit+1)
			}
		}
	}
	if json.Valid(d.Body) {
		dl.Payload = d.Body
	} else {
		dl.Raw = strconv.Quote(string(d.Body))
	}
	return dl
}
