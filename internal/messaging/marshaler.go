package messaging

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	"github.com/ThreeDotsLabs/watermill/message"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// marshaler is Watermill's DefaultMarshaler, except that it accepts headers
// that are not strings: a quorum queue adds x-delivery-count, an integer, to
// every redelivery, which the default refuses ("metadata x-delivery-count is
// not a string"), so that a message redelivered after a failover was
// nacked until the delivery limit parked it. Such a header becomes its
// printed value.
type marshaler struct{ amqp.DefaultMarshaler }

func (m marshaler) Unmarshal(d amqp091.Delivery) (*message.Message, error) {
	headers := make(amqp091.Table, len(d.Headers))
	for k, v := range d.Headers {
		if s, ok := v.(string); ok {
			headers[k] = s
		} else {
			headers[k] = fmt.Sprint(v)
		}
	}
	d.Headers = headers
	return m.DefaultMarshaler.Unmarshal(d)
}
