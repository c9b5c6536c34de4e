package amqp

import (
	"context"
	"errors"
	"fmt"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// InspectQueue reports the ready messages and the consumers of the queue
// named name with a passive declare, which changes nothing;
// transport.ErrNoQueue when there is none.
func (b *connection) InspectQueue(ctx context.Context, name string) (transport.QueueState, error) {
	if err := wire.Name("queue name", name); err != nil {
		return transport.QueueState{}, fmt.Errorf("hypha: inspecting queue %s: %w", wire.Quote(name), err)
	}
	var st transport.QueueState
	err := b.withChannel(ctx, func(ch *amqp091.Channel) error {
		q, err := ch.QueueDeclarePassive(name, false, false, false, false, nil)
		if err != nil {
			return queueError(name, err)
		}
		st = transport.QueueState{Messages: q.Messages, Consumers: q.Consumers}
		return nil
	})
	return st, err
}

// ReadQueue opens a reader of the queue named name on a channel of its own:
// Get is basic.get without auto-ack, and closing the channel returns what
// the reader holds unsettled. Deliveries pass through the frame reader as a
// consumer's do (see package frame): headers amqp091-go cannot read, or a body
// over MaxMessageSize, arrive as Delivery.Malformed instead of closing the
// connection. The reader does not survive a reconnect: its Get then fails.
func (b *connection) ReadQueue(ctx context.Context, name string) (transport.QueueReader, error) {
	if err := wire.Name("queue name", name); err != nil {
		return nil, fmt.Errorf("hypha: reading queue %s: %w", wire.Quote(name), err)
	}
	sess, err := b.current(ctx)
	if err != nil {
		return nil, err
	}
	ch, err := sess.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("hypha: opening channel: %w", err)
	}
	if _, err := ch.QueueDeclarePassive(name, false, false, false, false, nil); err != nil {
		ch.Close()
		return nil, queueError(name, err)
	}
	lost := make(chan struct{})
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	go func() {
		<-closed // closed by amqp091-go when the channel or its connection ends
		close(lost)
	}()
	return &reader{ch: ch, queue: name, lost: lost}, nil
}

// reader is a transport.QueueReader on one channel.
type reader struct {
	ch    *amqp091.Channel
	queue string
	lost  chan struct{}
}

// Get takes the next message with basic.get.
func (r *reader) Get(ctx context.Context) (transport.Delivery, bool, error) {
	if err := ctx.Err(); err != nil {
		return transport.Delivery{}, false, err
	}
	d, ok, err := r.ch.Get(r.queue, false)
	if err != nil {
		return transport.Delivery{}, false, fmt.Errorf("hypha: reading queue %q: %w", r.queue, queueError(r.queue, err))
	}
	if !ok {
		return transport.Delivery{}, false, nil
	}
	return delivery(d, r.lost), true, nil
}

// Close closes the channel: the broker requeues what it delivered unsettled.
func (r *reader) Close() error {
	err := r.ch.Close()
	<-r.lost
	if errors.Is(err, amqp091.ErrClosed) {
		return nil
	}
	return err
}

// queueError makes the broker's NOT_FOUND for a queue transport.ErrNoQueue.
func queueError(name string, err error) error {
	var ae *amqp091.Error
	if errors.As(err, &ae) && ae.Code == amqp091.NotFound {
		return fmt.Errorf("%w %q", transport.ErrNoQueue, name)
	}
	return fmt.Errorf("hypha: looking up queue %q: %w", name, err)
}
