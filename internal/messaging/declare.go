package messaging

import (
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// ErrQueueMismatch means a queue of the namespace exists with other
// arguments than this process declares, most often another type: RabbitMQ
// cannot turn a classic queue into a quorum queue, or back, in place.
var ErrQueueMismatch = errors.New("queue exists with other arguments")

// DeclareQueues declares every queue of the namespace as the workers will,
// before anything consumes or publishes, so that a queue the broker already
// has with another type stops the process at start with the way out,
// instead of failing a subscriber later.
func (t Topology) DeclareQueues() error {
	conn, err := t.Dial()
	if err != nil {
		return fmt.Errorf("connect to AMQP_URL: %w", err)
	}
	defer conn.Close()
	for _, r := range append(Routes[:len(Routes):len(Routes)], DeadLetters) {
		if err := t.declare(conn, r); err != nil {
			return err
		}
	}
	return nil
}

func (t Topology) declare(conn *amqp091.Connection, r Route) error {
	queue := t.Queue(r)
	// A refused declaration closes its channel: each gets its own.
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("declare %s: %w", queue, err)
	}
	defer ch.Close()
	_, err = ch.QueueDeclare(queue, true, false, false, false, t.QueueArguments(r))
	var amqpErr *amqp091.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp091.PreconditionFailed:
		return fmt.Errorf("%w: queue %q exists with other arguments than a %s queue of this release (AMQP_QUEUE_TYPE=%s), "+
			"and a queue cannot change its type or arguments in place. To migrate, start the workers with a new AMQP_NAMESPACE, "+
			"and keep a workers process with the old settings until the old namespace's queues are empty (README: Scaling out). Broker: %s",
			ErrQueueMismatch, queue, t.queueType(), t.queueType(), amqpErr.Reason)
	default:
		return fmt.Errorf("declare %s: %w", queue, err)
	}
}

func (t Topology) queueType() string {
	if t.QueueType == "" {
		return ClassicQueues
	}
	return t.QueueType
}
