// Package testamqp gives each test its own RabbitMQ namespace on the local
// broker, removes it afterwards, and can stop and start the broker for
// outage tests.
package testamqp

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/ordersvc/orders/internal/messaging"
	"github.com/ordersvc/orders/internal/testkit/testlock"
)

// URL is the broker the tests use; TEST_AMQP_URL overrides the local default.
func URL() string {
	if u := os.Getenv("TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// Namespace returns a fresh topology for t and deletes its queues and
// exchanges when t ends. It takes the broker's shared test lock, so an outage
// test never runs meanwhile; outage tests call Outage first instead.
func Namespace(t testing.TB) messaging.Topology {
	t.Helper()
	testlock.Shared(t, "rabbitmq")
	return namespace(t)
}

func namespace(t testing.TB) messaging.Topology {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	topo := messaging.Topology{Namespace: "test_" + hex.EncodeToString(b), URL: URL()}
	WaitUp(t)
	t.Cleanup(func() { deleteTopology(t, topo) })
	return topo
}

// Outage returns a fresh topology for a test that will stop the broker: it
// holds the broker exclusively, and makes sure the broker runs again when
// the test ends.
func Outage(t testing.TB) messaging.Topology {
	t.Helper()
	testlock.Exclusive(t, "rabbitmq")
	t.Cleanup(func() { Start(t) })
	return namespace(t)
}

// Stop stops the RabbitMQ application (the Erlang node stays up).
func Stop(t testing.TB) {
	t.Helper()
	rabbitmqctl(t, "stop_app")
}

// Start starts the RabbitMQ application and waits until it accepts connections.
func Start(t testing.TB) {
	t.Helper()
	rabbitmqctl(t, "start_app")
	WaitUp(t)
}

// WaitUp waits until the broker accepts an AMQP connection.
func WaitUp(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		conn, err := amqp091.Dial(URL())
		if err == nil {
			_ = conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testamqp: RabbitMQ is not reachable at %s: %v (is it running? see README)", URL(), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func rabbitmqctl(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput() //nolint:noctx // a short admin command
	if err != nil {
		t.Fatalf("testamqp: rabbitmqctl %v: %v\n%s", args, err, out)
	}
}

// QueueDepth returns the number of ready messages in queue.
func QueueDepth(t testing.TB, queue string) int {
	t.Helper()
	return QueueDepthAt(t, messaging.Topology{URL: URL()}, queue)
}

// QueueDepthAt returns the number of ready messages in queue on topo's
// brokers (a Cluster's, say).
func QueueDepthAt(t testing.TB, topo messaging.Topology, queue string) int {
	t.Helper()
	conn, err := topo.Dial()
	if err != nil {
		t.Fatalf("testamqp: dial: %v", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("testamqp: channel: %v", err)
	}
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("testamqp: inspect %s: %v", queue, err)
	}
	return q.Messages
}

// OwnQueues makes the end of t delete the queues t declared in topo beyond
// its routes' (a consumer group of its own, say), which the namespace's own
// cleanup does not know.
func OwnQueues(t testing.TB, topo messaging.Topology, queues ...string) {
	t.Helper()
	t.Cleanup(func() {
		if err := topo.DeleteQueues(queues...); err != nil {
			t.Logf("testamqp: cleanup of %s's own queues skipped, RabbitMQ unreachable: %v", topo.Namespace, err)
		}
	})
}

func deleteTopology(t testing.TB, topo messaging.Topology) {
	if err := topo.Delete(); err != nil {
		t.Logf("testamqp: cleanup of %s skipped, RabbitMQ unreachable: %v", topo.Namespace, err)
	}
}

// RefusePublishes makes the broker refuse every message published to queue
// (a policy: max-length 0, overflow reject-publish) until the returned
// function runs, or t ends. Only queue is affected, so no exclusive lock.
func RefusePublishes(t testing.TB, queue string) (accept func()) {
	t.Helper()
	name := "refuse-" + queue
	rabbitmqctl(t, "set_policy", "--apply-to", "queues", "--priority", "100",
		name, "^"+regexp.QuoteMeta(queue)+"$", `{"max-length":0,"overflow":"reject-publish"}`)
	var once sync.Once
	accept = func() { once.Do(func() { rabbitmqctl(t, "clear_policy", name) }) }
	t.Cleanup(accept)
	return accept
}
