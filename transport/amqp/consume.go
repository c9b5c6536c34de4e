package amqp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp/internal/frame"
)

// consumer is one queue consumed on a channel of its own, resumed on a new
// channel after its channel or connection is lost, or after the broker
// cancelled it. Its handler is never run by two loops at once: a new loop
// starts delivering only once the previous one has returned.
type consumer struct {
	b    *connection
	opts transport.ConsumeOptions
	h    transport.Handler
	tag  string

	mu        sync.Mutex
	ch        *amqp091.Channel // nil while disconnected
	cancelled bool
	resuming  bool
	last      chan struct{}  // closed when the latest delivery loop has returned
	loops     sync.WaitGroup // running delivery loops; added to only while not cancelled
}

func newConsumer(b *connection, opts transport.ConsumeOptions, h transport.Handler) *consumer {
	return &consumer{b: b, opts: opts, h: h, tag: "hypha-" + uuid.NewString()}
}

// resume starts consuming on conn unless the consumer already runs or was
// cancelled. The broker calls are made without holding c.mu, so a broker
// that does not answer never holds up Cancel or Close.
func (c *consumer) resume(conn *amqp091.Connection) error {
	c.mu.Lock()
	if c.cancelled || c.resuming || (c.ch != nil && !c.ch.IsClosed()) {
		c.mu.Unlock()
		return nil
	}
	c.resuming = true
	c.mu.Unlock()
	ch, deliveries, err := c.open(conn)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.resuming = false
	switch {
	case err != nil:
		return err
	case c.cancelled:
		go ch.Close()
		return nil
	}
	prev, done := c.last, make(chan struct{})
	c.ch, c.last = ch, done
	c.loops.Add(1)
	go c.loop(ch, deliveries, lostWith(ch), prev, done)
	return nil
}

// lostWith returns a channel closed when ch closes, with its connection or
// alone: its deliveries can no longer be settled, and the broker will deliver
// them again.
func lostWith(ch *amqp091.Channel) <-chan struct{} {
	closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
	lost := make(chan struct{})
	go func() {
		for range closed {
		}
		close(lost)
	}()
	return lost
}

// open opens a channel with the prefetch and starts consuming on it.
func (c *consumer) open(conn *amqp091.Connection) (*amqp091.Channel, <-chan amqp091.Delivery, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("hypha: opening channel for queue %q: %w", c.opts.Queue, err)
	}
	if c.opts.Prefetch > 0 {
		if err := ch.Qos(c.opts.Prefetch, 0, false); err != nil {
			ch.Close()
			return nil, nil, fmt.Errorf("hypha: prefetch %d for queue %q: %w", c.opts.Prefetch, c.opts.Queue, err)
		}
	}
	deliveries, err := ch.Consume(c.opts.Queue, c.tag, false, false, false, false, nil)
	if err != nil {
		ch.Close()
		return nil, nil, fmt.Errorf("hypha: consuming queue %q: %w", c.opts.Queue, refused(err, fmt.Sprintf("read on queue %q", c.opts.Queue)))
	}
	return ch, deliveries, nil
}

// loop hands deliveries to the handler until the channel ends, once the
// previous loop has returned. A loop that ends without Cancel (the channel
// closed alone, or the broker cancelled the consumer) starts consuming again
// on the same connection; a loop that ends with the connection leaves that to
// the reconnect.
func (c *consumer) loop(ch *amqp091.Channel, deliveries <-chan amqp091.Delivery, lost <-chan struct{}, prev, done chan struct{}) {
	defer c.loops.Done()
	defer close(done)
	if prev != nil {
		select {
		case <-prev:
		case <-c.b.done:
			return
		}
	}
	for d := range deliveries {
		if c.isCancelled() {
			// Received before the cancel took effect: give it back so
			// another consumer can take it now rather than at close.
			_ = d.Nack(false, true)
			continue
		}
		c.h(delivery(d, lost))
	}
	if c.isCancelled() {
		return
	}
	if !ch.IsClosed() {
		go ch.Close() // the broker cancelled the consumer but left the channel open
	}
	c.mu.Lock()
	if c.ch == ch {
		c.ch = nil
	}
	c.mu.Unlock()
	c.restart()
}

// restart consumes again on the live connection, declaring the queue again
// first (the broker cancels consumers of a deleted queue), with a growing
// pause between tries; it stops when the consumer is cancelled, the broker
// closes, or the connection goes (the reconnect takes over).
func (c *consumer) restart() {
	wait := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		select {
		case <-c.b.done:
			return
		case <-time.After(wait):
		}
		conn := c.b.live()
		if c.isCancelled() || conn == nil || conn.IsClosed() {
			return
		}
		err := c.b.redeclareQueue(conn, c.opts.Queue)
		if err == nil {
			err = c.resume(conn)
		}
		if err == nil {
			return
		}
		if attempt == 0 {
			c.b.log.Error("hypha: consumer stopped; trying to consume again", "queue", c.opts.Queue, "error", err)
		}
		wait = min(2*wait, 5*time.Second)
	}
}

func (c *consumer) isCancelled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelled
}

// Cancel stops the broker sending more and waits, bounded by ctx, for the
// delivery loops to end. On a connection the broker has blocked (a resource
// alarm) it does not wait: the broker reads nothing there, so no cancel-ok
// would come; deliveries still arriving go back to the queue, and closing the
// connection ends the loops.
func (c *consumer) Cancel(ctx context.Context) error {
	c.mu.Lock()
	first := !c.cancelled
	c.cancelled = true
	ch := c.ch
	c.mu.Unlock()
	if c.b.blocked() {
		return nil
	}
	if first && ch != nil && !ch.IsClosed() {
		cancelled := make(chan struct{})
		go func() {
			defer close(cancelled)
			if err := ch.Cancel(c.tag, false); err != nil {
				ch.Close() // the channel is gone; its deliveries went back to the queue
			}
		}()
		select {
		case <-cancelled:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return waitWithin(ctx, &c.loops)
}

// Close cancels and closes the channel; unsettled deliveries return to the
// queue. It waits for the broker at most closeTimeout.
func (c *consumer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = c.Cancel(ctx)
	c.b.forget(c)
	c.mu.Lock()
	ch := c.ch
	c.mu.Unlock()
	switch {
	case ch == nil:
	case c.b.blocked():
		go ch.Close() // done once the broker reads again, or with the connection
	default:
		closeWithin(ctx, func() { ch.Close() })
		_ = waitWithin(ctx, &c.loops)
	}
	return nil
}

// abandon stops handing deliveries to the handler without a word to the
// broker: the connection is about to close, which settles everything.
func (c *consumer) abandon() {
	c.mu.Lock()
	c.cancelled = true
	c.mu.Unlock()
}

// waitWithin waits for wg, or for ctx to end.
func waitWithin(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		select {
		case <-done: // finished as ctx ended: not a timeout
			return nil
		default:
			return ctx.Err()
		}
	}
}

// closeWithin runs closeFn, which waits for the broker's close-ok, and
// returns when it does or when ctx ends: a blocked or unreachable broker never
// holds up a stop. The connection's close, bounded by its own deadline, ends
// whatever is left.
func closeWithin(ctx context.Context, closeFn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		closeFn()
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// ack settles one delivery on the channel it came from: after a reconnect it
// fails rather than ack on the new channel, which RabbitMQ would refuse with
// 406 and close; the broker redelivers the message instead.
type ack struct{ d amqp091.Delivery }

func (a ack) Ack() error              { return a.d.Ack(false) }
func (a ack) Nack(requeue bool) error { return a.d.Nack(false, requeue) }

func delivery(d amqp091.Delivery, lost <-chan struct{}) transport.Delivery {
	exp := expiration(d.Expiration)
	var malformed error
	if why, ok := d.Headers[frame.MalformedHeader]; ok {
		// Put there by the frame reader: see package frame.
		malformed = fmt.Errorf("%w: %v", transport.ErrMalformed, why)
		delete(d.Headers, frame.MalformedHeader)
	}
	return transport.Delivery{
		Malformed: malformed,
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
		Received:     time.Now(),
		Lost:         lost,
		Acknowledger: ack{d},
	}
}

// maxExpiration is the longest message expiration read: a larger one would
// overflow time.Duration, and RabbitMQ keeps no message for longer anyway.
const maxExpiration = time.Duration(math.MaxInt64 / int64(time.Millisecond) * int64(time.Millisecond))

// expiration reads a message's expiration property (milliseconds, as
// decimal text): zero (none) unless it is a whole number of at least 1,
// and at most maxExpiration, so that no peer's text turns into a negative
// or wrapped-around budget.
func expiration(s string) time.Duration {
	ms, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange) && !strings.HasPrefix(s, "-"):
		return maxExpiration
	case err != nil || ms <= 0:
		return 0
	case ms > int64(maxExpiration/time.Millisecond):
		return maxExpiration
	}
	return time.Duration(ms) * time.Millisecond
}
