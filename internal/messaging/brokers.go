package messaging

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill-amqp/v3/pkg/amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"
)

// ParseBrokers reads AMQP_URL: one broker URL, or several separated by
// commas (the nodes of a cluster), tried in turn on every (re)connect. The
// credentials, virtual host and scheme come from the first URL, so every
// other must carry the same ones: the brokers are the nodes of one cluster,
// and only their addresses differ. Errors name the broker by its position and
// address, never by its password.
func ParseBrokers(list string) ([]amqp091.URI, error) {
	var uris []amqp091.URI
	for i, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("broker %d is empty; separate broker URLs with single commas", i+1)
		}
		u, err := amqp091.ParseURI(part)
		if err != nil {
			return nil, fmt.Errorf("broker %d is not an amqp:// or amqps:// URL such as amqp://user:password@host:5672/vhost: %w", i+1, redactedURIError(err, part))
		}
		if len(uris) > 0 {
			first := uris[0]
			if u.Scheme != first.Scheme || u.Username != first.Username || u.Password != first.Password || u.Vhost != first.Vhost {
				return nil, fmt.Errorf("broker %d (%s) must have the scheme, user, password and virtual host of broker 1 (%s): they are nodes of one cluster",
					i+1, brokerAddr(u), brokerAddr(first))
			}
		}
		uris = append(uris, u)
	}
	return uris, nil
}

// redactedURIError keeps amqp091's reason for refusing a URL without the
// URL itself, which may hold a password.
func redactedURIError(err error, raw string) error {
	if strings.Contains(err.Error(), raw) || strings.Contains(err.Error(), "@") {
		return errors.New("unparsable")
	}
	return err
}

func brokerAddr(u amqp091.URI) string {
	return net.JoinHostPort(u.Host, strconv.Itoa(u.Port))
}

// brokerDialTimeout bounds each broker's TCP connect and AMQP handshake, so
// that an unreachable node delays the next one by at most this long.
const brokerDialTimeout = 5 * time.Second

// brokerDialer connects to the first broker of a list that answers. Each
// connection has its own: after a successful dial it starts the next one (a
// reconnect: the broker it had just went away) at the following broker.
type brokerDialer struct {
	addrs []string
	mu    sync.Mutex
	next  int
}

func (d *brokerDialer) dial(network, _ string) (net.Conn, error) {
	d.mu.Lock()
	start := d.next
	d.mu.Unlock()
	var errs []error
	for i := range d.addrs {
		k := (start + i) % len(d.addrs)
		conn, err := amqp091.DefaultDial(brokerDialTimeout)(network, d.addrs[k])
		if err == nil {
			d.mu.Lock()
			d.next = (k + 1) % len(d.addrs)
			d.mu.Unlock()
			return conn, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no AMQP broker reachable: %w", errors.Join(errs...))
}

// connection is the Watermill connection config for t's brokers: the first
// URL gives the credentials and virtual host, the dialer the address. An
// unparsable URL is left for the dial to report (config.Load has refused it
// already).
func (t Topology) connection() amqp.ConnectionConfig {
	uris, err := ParseBrokers(t.URL)
	if err != nil || len(uris) == 1 {
		return amqp.ConnectionConfig{AmqpURI: strings.TrimSpace(t.URL), Reconnect: reconnect}
	}
	d := &brokerDialer{}
	for _, u := range uris {
		d.addrs = append(d.addrs, brokerAddr(u))
	}
	return amqp.ConnectionConfig{
		AmqpURI:    uris[0].String(),
		AmqpConfig: &amqp091.Config{Dial: d.dial, Locale: "en_US"},
		Reconnect:  reconnect,
	}
}

// reconnect is how a lost connection is dialled again: soon, then at most
// every MaxReconnectInterval. Watermill's default lets the wait grow to a
// minute (90 s with its jitter), so after a long broker outage the
// consumers could stay away for a minute after the broker was back.
var reconnect = &amqp.ReconnectConfig{
	BackoffInitialInterval:     250 * time.Millisecond,
	BackoffRandomizationFactor: 0.2,
	BackoffMultiplier:          2,
	BackoffMaxInterval:         MaxReconnectInterval,
}

// MaxReconnectInterval bounds the wait between two attempts to reach a
// broker again: the longest a process stays disconnected after RabbitMQ is
// back, plus the jitter (a fifth of it).
const MaxReconnectInterval = 5 * time.Second

// Dial opens a connection to the first of t's brokers that answers, for the
// operator commands and the tests.
func (t Topology) Dial() (*amqp091.Connection, error) {
	c := t.connection()
	if c.AmqpConfig == nil {
		return amqp091.Dial(c.AmqpURI)
	}
	return amqp091.DialConfig(c.AmqpURI, *c.AmqpConfig)
}
