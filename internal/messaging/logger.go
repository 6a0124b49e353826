package messaging

import (
	"context"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
)

// Logger adapts logger for Watermill, so that the workers' log says what
// happened rather than what each of their subscribers did about it:
//
//   - Watermill's info lines go to debug: the library logs its lifecycle at
//     info, every subscriber's start and stop, hundreds of lines for one
//     start of the process. Its errors stay errors.
//   - A broker outage is two warnings, "RabbitMQ connection lost" when the
//     first connection sees the broker close it and "RabbitMQ connection
//     back" when every connection that lost it has connected again. What
//     follows from it goes to debug: each subscriber losing its channel and
//     failing to consume again, each failed reconnect, each error a handler
//     returns while the broker is away (the handlers' metrics count them).
//   - Levels are asked before fields are built: the router and the AMQP
//     subscriber log each message at trace and debug level, and building
//     those fields for nothing is a measurable share of the workers' CPU
//     (docs/decisions.md).
func Logger(logger *slog.Logger) watermill.LoggerAdapter {
	return leveled{watermill.NewSlogLogger(logger), logger, &broker{logger: logger}}
}

type leveled struct {
	watermill.LoggerAdapter
	slog   *slog.Logger
	broker *broker
}

// Messages of watermill-amqp's connection wrapper and subscribers that
// mark, or follow from, a lost broker connection. The wrapper tells of its
// state only in these lines: its IsConnected reads a channel that its
// reconnect replaces without a lock.
const (
	msgConnectionClosed = "Received close notification from AMQP, reconnecting"
	msgConnected        = "Connected to AMQP"
	msgHandlerError     = "Handler returned error" // the router's
)

var outageConsequences = map[string]bool{
	"Cannot reconnect to AMQP, retrying":       true,
	"Channel closed, stopping ProcessMessages": true,
	"Failed to prepare consume":                true,
	"Failed to open channel":                   true,
	"Failed to start consuming messages":       true,
}

// broker follows the connections' state across every adapter made With
// fields from one Logger.
type broker struct {
	logger *slog.Logger
	mu     sync.Mutex
	lost   int // connections closed by the broker and not connected again
}

func (b *broker) closed(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost++; b.lost == 1 {
		b.logger.Warn("RabbitMQ connection lost; reconnecting", slog.Any("error", err))
	}
}

func (b *broker) connected() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lost == 0 {
		return
	}
	if b.lost--; b.lost == 0 {
		b.logger.Warn("RabbitMQ connection back")
	}
}

func (b *broker) away() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lost > 0
}

func (l leveled) Error(msg string, err error, fields watermill.LogFields) {
	switch {
	case msg == msgConnectionClosed:
		l.broker.closed(err)
	case outageConsequences[msg], msg == msgHandlerError && l.broker.away():
	default:
		l.LoggerAdapter.Error(msg, err, fields)
		return
	}
	if l.slog.Enabled(context.Background(), slog.LevelDebug) {
		l.LoggerAdapter.Debug(msg, fields.Add(watermill.LogFields{"err": err}))
	}
}

func (l leveled) Info(msg string, fields watermill.LogFields) {
	if msg == msgConnected {
		l.broker.connected()
	}
	l.Debug(msg, fields)
}

func (l leveled) Debug(msg string, fields watermill.LogFields) {
	if l.slog.Enabled(context.Background(), slog.LevelDebug) {
		l.LoggerAdapter.Debug(msg, fields)
	}
}

func (l leveled) Trace(msg string, fields watermill.LogFields) {
	if l.slog.Enabled(context.Background(), watermill.LevelTrace) {
		l.LoggerAdapter.Trace(msg, fields)
	}
}

func (l leveled) With(fields watermill.LogFields) watermill.LoggerAdapter {
	return leveled{l.LoggerAdapter.With(fields), l.slog, l.broker}
}
