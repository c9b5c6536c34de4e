package memory

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// closeTimeout bounds how long closing a consumer or a connection waits for
// a handler to return.
const closeTimeout = 2 * time.Second

// consumer delivers one queue's messages to a handler, from one goroutine.
// Its fields after h are guarded by the server's mutex.
type consumer struct {
	s        *server
	conn     *connection
	q        *queue
	prefetch int
	h        transport.Handler
	wake     chan struct{} // signals pending deliveries or a cancel
	done     chan struct{} // closed when the delivery goroutine returns

	pending   []handover        // taken from the queue, not yet handed to h
	unacked   map[uint64]*entry // by delivery tag, pending ones included
	cancelled bool              // takes no more deliveries
	lostQueue bool              // cancelled because its queue was deleted
	closed    bool              // its unsettled deliveries went back to the queue
	lost      chan struct{}     // closed with closed
}

// handover is a delivery on its way to the handler.
type handover struct {
	tag         uint64
	e           *entry
	redelivered bool
}

var _ transport.Consumer = (*consumer)(nil)

func newConsumer(conn *connection, q *queue, prefetch int, h transport.Handler) *consumer {
	return &consumer{
		s: conn.s, conn: conn, q: q, prefetch: prefetch, h: h,
		wake: make(chan struct{}, 1), done: make(chan struct{}), lost: make(chan struct{}),
		unacked: map[uint64]*entry{},
	}
}

// hasRoom reports whether the consumer takes another delivery: not
// cancelled, and fewer unacknowledged deliveries than its prefetch.
func (c *consumer) hasRoom() bool {
	return !c.cancelled && (c.prefetch <= 0 || len(c.unacked) < c.prefetch)
}

// deliver takes e for the handler.
func (c *consumer) deliver(e *entry) {
	c.s.tags++
	c.unacked[c.s.tags] = e
	c.pending = append(c.pending, handover{tag: c.s.tags, e: e, redelivered: e.redelivered})
	c.signal()
}

func (c *consumer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run hands deliveries to the handler one at a time until cancelled.
func (c *consumer) run() {
	defer close(c.done)
	for {
		c.s.mu.Lock()
		for len(c.pending) == 0 && !c.cancelled {
			c.s.mu.Unlock()
			<-c.wake
			c.s.mu.Lock()
		}
		if c.cancelled {
			c.s.mu.Unlock()
			return
		}
		next := c.pending[0]
		c.pending[0] = handover{}
		c.pending = c.pending[1:]
		c.s.mu.Unlock()
		c.h(c.delivery(next))
	}
}

// delivery is the copy of a message handed to the handler. A body over the
// consuming connection's MaxMessageSize (a publisher's limit can be larger)
// is dropped and the delivery marked malformed, as transport/amqp does.
func (c *consumer) delivery(h handover) transport.Delivery {
	m := h.e.msg
	msg := m.Message
	msg.Body = bytes.Clone(m.Body)
	msg.Headers = clone(m.Headers)
	var malformed error
	if size := int64(len(m.Body)); size > c.conn.opts.MaxMessageSize {
		msg.Body = nil
		malformed = fmt.Errorf("%w: message body of %d bytes is over MAX_MESSAGE_SIZE %d",
			transport.ErrMalformed, size, c.conn.opts.MaxMessageSize)
	}
	return transport.Delivery{
		Message:      msg,
		Malformed:    malformed,
		Exchange:     m.exchange,
		RoutingKey:   m.routingKey,
		Redelivered:  h.redelivered,
		Received:     time.Now(),
		Lost:         c.lost,
		Acknowledger: acker{c: c, tag: h.tag},
	}
}

// cancel stops deliveries: those not yet handed to the handler go back to
// the queue, and the queue forgets the consumer. s.mu is held.
func (c *consumer) cancel() {
	if c.cancelled {
		return
	}
	c.cancelled = true
	c.signal()
	for i, p := range c.pending {
		delete(c.unacked, p.tag)
		c.q.requeue(p.e)
		c.pending[i] = handover{}
	}
	c.pending = nil
	c.q.removeConsumer(c)
	if !c.q.deleted {
		c.q.dispatch(time.Now())
	}
}

// cancelByBroker stops the consumer of a queue being deleted, whose
// messages are gone with it. s.mu is held.
func (c *consumer) cancelByBroker() {
	if c.cancelled {
		return
	}
	c.cancelled, c.lostQueue = true, true
	for _, p := range c.pending {
		delete(c.unacked, p.tag)
	}
	c.pending = nil
	c.signal()
}

// release cancels and returns every unsettled delivery to the queue,
// redelivered, in its place, before another consumer can take anything.
// s.mu is held.
func (c *consumer) release() {
	if c.closed {
		return
	}
	c.closed = true
	close(c.lost)
	for _, e := range c.unacked {
		c.q.requeue(e)
	}
	c.unacked, c.pending = nil, nil
	c.cancel()
	delete(c.conn.consumers, c)
	if !c.q.deleted {
		c.q.dispatch(time.Now())
	}
}

// Cancel stops new deliveries and waits, bounded by ctx, for the handler
// to return for the last time; deliveries already handed over can still be
// settled.
func (c *consumer) Cancel(ctx context.Context) error {
	c.s.mu.Lock()
	c.cancel()
	c.s.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close cancels, waiting for the handler at most closeTimeout, and returns
// every unsettled delivery to its queue.
func (c *consumer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = c.Cancel(ctx)
	c.s.mu.Lock()
	c.release()
	c.s.mu.Unlock()
	return nil
}

// acker settles one delivery.
type acker struct {
	c   *consumer
	tag uint64
}

func (a acker) Ack() error { return a.settle(func(*queue, *entry) {}) }

func (a acker) Nack(requeue bool) error {
	return a.settle(func(q *queue, e *entry) {
		if requeue {
			q.requeue(e)
		} else {
			q.deadLetter(e, "rejected", time.Now())
		}
	})
}

// settle takes the delivery off the consumer's unacknowledged ones, does
// what settles it, and lets the queue deliver again.
func (a acker) settle(fn func(*queue, *entry)) error {
	c := a.c
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.closed {
		return fmt.Errorf("hypha: settling a delivery from queue %q: its consumer is closed, and the message went back to the queue: %w",
			c.q.name, transport.ErrClosed)
	}
	e, ok := c.unacked[a.tag]
	if !ok {
		return fmt.Errorf("hypha: settling a delivery from queue %q: %w - unknown delivery tag %d (settled twice?)",
			c.q.name, errPrecondition, a.tag)
	}
	delete(c.unacked, a.tag)
	if c.q.deleted {
		return nil
	}
	fn(c.q, e)
	c.q.dispatch(time.Now())
	return nil
}
