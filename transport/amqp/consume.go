package amqp

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
)

// consumer is one queue consumed on a channel of its own.
type consumer struct {
	b    *Broker
	ch   *amqp091.Channel
	tag  string
	done chan struct{} // closed when the delivery loop has returned

	mu        sync.Mutex
	cancelled bool
}

func startConsumer(b *Broker, opts transport.ConsumeOptions, h transport.Handler) (*consumer, error) {
	ch, err := b.conn.Channel() // b.mu is held
	if err != nil {
		return nil, fmt.Errorf("hypha: opening channel for queue %q: %w", opts.Queue, err)
	}
	if opts.Prefetch > 0 {
		if err := ch.Qos(opts.Prefetch, 0, false); err != nil {
			ch.Close()
			return nil, fmt.Errorf("hypha: prefetch %d for queue %q: %w", opts.Prefetch, opts.Queue, err)
		}
	}
	c := &consumer{b: b, ch: ch, tag: "hypha-" + uuid.NewString(), done: make(chan struct{})}
	deliveries, err := ch.Consume(opts.Queue, c.tag, false, false, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("hypha: consuming queue %q: %w", opts.Queue, err)
	}
	go c.loop(deliveries, h)
	return c, nil
}

func (c *consumer) loop(deliveries <-chan amqp091.Delivery, h transport.Handler) {
	defer close(c.done)
	for d := range deliveries {
		if c.isCancelled() {
			// Received before the cancel took effect: give it back so
			// another consumer can take it now rather than at close.
			_ = d.Nack(false, true)
			continue
		}
		h(delivery(d))
	}
}

func (c *consumer) isCancelled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelled
}

// Cancel stops the broker sending more and waits for the delivery loop to end.
func (c *consumer) Cancel(ctx context.Context) error {
	c.mu.Lock()
	first := !c.cancelled
	c.cancelled = true
	c.mu.Unlock()
	if first && !c.ch.IsClosed() {
		if err := c.ch.Cancel(c.tag, false); err != nil {
			// The channel is gone; its deliveries went back to the queue.
			c.ch.Close()
		}
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close cancels and closes the channel; unsettled deliveries return to the queue.
func (c *consumer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Cancel(ctx)
	c.b.forget(c)
	err := c.ch.Close()
	if err != nil && err != amqp091.ErrClosed {
		return err
	}
	<-c.done
	return nil
}

// ack settles one delivery.
type ack struct{ d amqp091.Delivery }

func (a ack) Ack() error              { return a.d.Ack(false) }
func (a ack) Nack(requeue bool) error { return a.d.Nack(false, requeue) }

func delivery(d amqp091.Delivery) transport.Delivery {
	var exp time.Duration
	if d.Expiration != "" {
		var ms int64
		if _, err := fmt.Sscan(d.Expiration, &ms); err == nil {
			exp = time.Duration(ms) * time.Millisecond
		}
	}
	return transport.Delivery{
		Message: transport.Message{
			Body:            d.Body,
			ContentType:     d.ContentType,
			ContentEncoding: d.ContentEncoding,
			CorrelationID:   d.CorrelationId,
			ReplyTo:         d.ReplyTo,
			MessageID:       d.MessageId,
			Persistent:      d.DeliveryMode == amqp091.Persistent,
			Expiration:      exp,
			Headers:         fromTable(d.Headers),
		},
		Exchange:     d.Exchange,
		RoutingKey:   d.RoutingKey,
		Redelivered:  d.Redelivered,
		Acknowledger: ack{d},
	}
}
