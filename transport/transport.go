// Package transport is Hypha's one seam to a message broker. rpc, events and
// timer speak only these types. transport/amqp implements them over RabbitMQ
// with amqp091-go; transport/memory, the embedded broker, implements them in
// the process with RabbitMQ's semantics; transport/dial connects to either,
// by the URI's scheme.
//
// The model is AMQP 0-9-1's: named exchanges route published messages by
// routing key to bound queues; consumers take messages from a queue and
// acknowledge each one. Every method is safe for concurrent use.
package transport

import (
	"context"
	"errors"
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

// ErrInvalid is returned by Publish, the declarations and Consume for what
// AMQP or the broker cannot take: a name, key or property over 255 bytes, a
// name that is not UTF-8, a header value AMQP cannot carry, an expiration
// or a prefetch out of range. Nothing was sent, the connection stays up,
// and sending the same again fails alike: it is final, never retried.
var ErrInvalid = errors.New("hypha: invalid for the broker")

// ErrNoQueue is returned when a queue looked up by name does not exist.
var ErrNoQueue = errors.New("hypha: no such queue")

// QueueState is what the broker says of a queue at one moment.
type QueueState struct {
	// Messages is how many messages wait to be delivered; those delivered
	// and not yet acknowledged are not counted.
	Messages  int
	Consumers int
}

// QueueReader takes a queue's messages one at a time without a consumer
// (AMQP's basic.get), for tools that look at a queue or move its messages.
// Each delivery is settled as a consumer's is: Ack takes it off the queue,
// Nack(true) puts it back in its place, where the next Get finds it again.
// A delivery held unsettled is not handed out again, so a pass of Get over
// the queue sees each message at most once; those still unsettled go back
// to the queue, in their places, when the reader closes.
type QueueReader interface {
	// Get takes the next message; ok is false when the queue has none ready.
	Get(ctx context.Context) (d Delivery, ok bool, err error)
	// Close returns the unsettled deliveries to the queue.
	Close() error
}

// ErrInequivalent is wrapped by DeclareQueue's error when the queue exists
// with other properties or arguments (RabbitMQ's 406 PRECONDITION_FAILED,
// "inequivalent arg"): nothing was changed, and declaring it as it is works.
var ErrInequivalent = errors.New("hypha: queue exists with other properties or arguments")

// Exchange types: the kinds an Exchange may have.
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
	// Passive is for a user of an exchange another owns, as a caller uses a
	// service's: an exchange that exists is taken as it is, so that the
	// user needs no configure permission on it, which would let it delete
	// the exchange under its owners. One that is missing is declared as
	// described, which needs that permission.
	Passive bool
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
	// once, 0 to 65535 (AMQP's basic.qos carries 16 bits); 0 leaves it
	// unbounded.
	Prefetch int
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
