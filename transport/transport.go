// Package transport is Hypha's one seam to a message broker. rpc and events
// speak only these types; transport/amqp implements them over RabbitMQ, and an
// embedded in-process broker can implement them with the same semantics.
//
// The model is AMQP 0-9-1's: named exchanges route published messages by
// routing key to bound queues; consumers take messages from a queue and
// acknowledge each one. Every method is safe for concurrent use.
package transport

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrUnroutable is returned by Publish when a mandatory message reached no queue.
var ErrUnroutable = errors.New("hypha: message unroutable")

// ErrUncertain is returned by Publish when the connection was lost after the
// message was sent but before the broker confirmed it: it may or may not have
// arrived. Sending it again is safe only when handling it twice is.
var ErrUncertain = errors.New("hypha: message fate unknown: the connection was lost before the broker confirmed it")

// ErrClosed is returned by a broker connection used after Close.
var ErrClosed = errors.New("hypha: transport closed")

// ErrMalformed is wrapped by Delivery.Malformed: the message arrived, but not
// in a form that can be handed over as it was sent.
var ErrMalformed = errors.New("hypha: malformed message")

// ErrTooLarge is returned by Publish for a message over the size limit (the
// broker connection's frame size for its headers, the configured maximum
// message size for its body); nothing was sent.
var ErrTooLarge = errors.New("hypha: message too large")

// Exchange types.
const (
	Topic  = "topic"
	Direct = "direct"
	Fanout = "fanout"
)

// Exchange describes an exchange to declare.
type Exchange struct {
	Name       string
	Kind       string // Topic, Direct or Fanout
	Durable    bool
	AutoDelete bool
}

// Binding routes messages published to Exchange with a matching RoutingKey
// (a topic pattern for topic exchanges) to a queue.
type Binding struct {
	Exchange   string
	RoutingKey string
}

// Queue describes a queue to declare with its bindings. Declaring a queue that
// exists with other properties or Args fails, as RabbitMQ refuses it.
type Queue struct {
	Name       string
	Durable    bool
	Exclusive  bool
	AutoDelete bool
	Args       map[string]any
	Bindings   []Binding
}

// Message is the part of a message that travels to its consumer.
type Message struct {
	Body            []byte
	ContentType     string
	ContentEncoding string
	CorrelationID   string
	ReplyTo         string
	MessageID       string
	Persistent      bool
	// Expiration drops the message when it has waited this long in a queue;
	// zero means never.
	Expiration time.Duration
	// Headers hold strings, numbers, booleans, time.Time, []byte, and lists and
	// maps of those.
	Headers map[string]any
}

// Publishing is a message with its destination.
type Publishing struct {
	Exchange   string
	RoutingKey string
	// Mandatory makes Publish fail with ErrUnroutable when no queue is bound to
	// receive the message.
	Mandatory bool
	Message
}

// Delivery is a message handed to a consumer. Exactly one of Ack or Nack must be
// called, once, from any goroutine; a delivery neither acked nor nacked when its
// consumer closes goes back to its queue.
type Delivery struct {
	Message
	Exchange    string
	RoutingKey  string
	Redelivered bool
	// Malformed, when not nil, wraps ErrMalformed and says why the message
	// could not be handed over as it was sent: headers the client library
	// cannot read (then Headers is empty), or a body over the size limit
	// (then Body is empty). Such a delivery is settled as malformed, with an
	// error reply or a dead letter, and never requeued: it would fail again.
	Malformed error
	// Received is when the consumer took the message from the broker: with
	// Expiration, the receiver's own deadline for it, which no clock skew
	// between sender and receiver can shift.
	Received time.Time
	// Lost, when not nil, is closed once the delivery can no longer be
	// settled because the channel or connection that carried it is gone:
	// the broker will deliver it again, so work on it should stop.
	Lost <-chan struct{}
	Acknowledger
}

// Acknowledger settles a delivery with the broker.
type Acknowledger interface {
	// Ack tells the broker the message was handled; it will not come again.
	Ack() error
	// Nack gives the message up: back to its queue when requeue is true,
	// dropped otherwise.
	Nack(requeue bool) error
}

// ConsumeOptions say what to consume and how much at once.
type ConsumeOptions struct {
	Queue string
	// Prefetch is the most unacknowledged deliveries the consumer holds at
	// once, 0 to MaxPrefetch; 0 leaves it unbounded.
	Prefetch int
}

// MaxPrefetch is the largest prefetch: AMQP 0-9-1's basic.qos carries it
// in 16 bits, so a larger one would wrap around to a small number.
const MaxPrefetch = 65535

// MaxName is the longest queue or exchange name and routing key, in bytes:
// AMQP 0-9-1 carries them as short strings.
const MaxName = 255

// Validate reports options no broker can honour as given, naming what is
// wrong: every Broker's Consume refuses them before it starts.
func (o ConsumeOptions) Validate() error {
	switch {
	case o.Prefetch < 0 || o.Prefetch > MaxPrefetch:
		return fmt.Errorf("hypha: consuming queue %q: prefetch %d: want 0 (unbounded) to %d, AMQP's limit", o.Queue, o.Prefetch, MaxPrefetch)
	case len(o.Queue) > MaxName:
		return fmt.Errorf("hypha: consuming queue %.40q...: its name has %d bytes, over AMQP's %d", o.Queue, len(o.Queue), MaxName)
	}
	return nil
}

// Handler receives deliveries one at a time, in order, from one goroutine. A
// handler that blocks holds back the next delivery, which is how a full worker
// pool pushes back on the broker.
type Handler func(Delivery)

// Consumer is a running consumption from a queue.
type Consumer interface {
	// Cancel stops new deliveries; those already handed to the handler can
	// still be acked. It waits until the handler has returned for the last time.
	Cancel(ctx context.Context) error
	// Close cancels if needed and releases the consumer; deliveries not yet
	// settled go back to the queue.
	Close() error
}

// Broker is a connection to a message broker.
type Broker interface {
	// DeclareExchange makes sure the exchange exists as described.
	DeclareExchange(ctx context.Context, ex Exchange) error
	// DeclareQueue makes sure the queue exists as described, with its bindings.
	DeclareQueue(ctx context.Context, q Queue) error
	// DeleteQueue deletes the named queue, messages and all (a queue that is
	// already gone is no error), and forgets it: it is not declared again
	// after a reconnect.
	DeleteQueue(ctx context.Context, name string) error
	// Publish sends p and returns once the broker has taken responsibility for
	// it (a publisher confirm), or ErrUnroutable for a mandatory message no
	// queue took, or the context's error.
	Publish(ctx context.Context, p Publishing) error
	// Consume starts delivering messages from a queue to h.
	Consume(ctx context.Context, opts ConsumeOptions, h Handler) (Consumer, error)
	// Close closes the connection and every consumer on it.
	Close() error
}

// IsTraceHeader reports whether a header carries W3C trace context
// (traceparent, tracestate) or baggage, which travel as plain headers.
func IsTraceHeader(key string) bool {
	return key == "traceparent" || key == "tracestate" || key == "baggage"
}

// HeaderCarrier reads and writes string values in message headers, as
// OpenTelemetry's propagators (TextMapCarrier) expect: trace context travels
// as plain headers.
type HeaderCarrier map[string]any

// Get returns the header's value when it is a string (or bytes), else "".
func (h HeaderCarrier) Get(key string) string {
	switch v := h[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Set sets the header to value.
func (h HeaderCarrier) Set(key, value string) { h[key] = value }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
