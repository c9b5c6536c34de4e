package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// InspectQueue reports the ready messages and the consumers of the queue
// named name; transport.ErrNoQueue when there is none.
func (b *connection) InspectQueue(ctx context.Context, name string) (transport.QueueState, error) {
	if err := wire.Name("queue name", name); err != nil {
		return transport.QueueState{}, fmt.Errorf("hypha: inspecting queue %s: %w", wire.Quote(name), err)
	}
	var st transport.QueueState
	err := b.locked(ctx, func() error {
		q, ok := b.s.queues[name]
		if !ok {
			return fmt.Errorf("%w %q", transport.ErrNoQueue, name)
		}
		q.dispatch(time.Now()) // what is due expires first, as RabbitMQ counts
		st = transport.QueueState{Messages: len(q.ready), Consumers: len(q.consumers)}
		return nil
	})
	return st, err
}

// ReadQueue opens a reader of the queue named name: a consumer that is
// never subscribed, so the queue hands it nothing by itself, and Get takes
// the head message. Closing the reader or the connection returns what it
// holds unsettled, as a consumer's close does.
func (b *connection) ReadQueue(ctx context.Context, name string) (transport.QueueReader, error) {
	if err := wire.Name("queue name", name); err != nil {
		return nil, fmt.Errorf("hypha: reading queue %s: %w", wire.Quote(name), err)
	}
	var r *reader
	err := b.locked(ctx, func() error {
		q, ok := b.s.queues[name]
		switch {
		case !ok:
			return fmt.Errorf("%w %q", transport.ErrNoQueue, name)
		case q.owner != nil && q.owner != b:
			return lockedError(name)
		}
		c := newConsumer(b, q, 0, nil)
		close(c.done) // no delivery goroutine to wait for
		b.consumers[c] = struct{}{}
		r = &reader{c: c}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hypha: reading queue %q: %w", name, err)
	}
	return r, nil
}

// reader is a transport.QueueReader on the embedded broker.
type reader struct{ c *consumer }

// Get takes the queue's head message, after expiring what is due there.
func (r *reader) Get(ctx context.Context) (transport.Delivery, bool, error) {
	var h handover
	c := r.c
	err := c.conn.locked(ctx, func() error {
		switch {
		case c.closed:
			return transport.ErrClosed
		case c.q.deleted:
			return fmt.Errorf("%w %q (deleted)", transport.ErrNoQueue, c.q.name)
		}
		c.q.dispatch(time.Now())
		if len(c.q.ready) == 0 {
			return nil
		}
		e := c.q.pop()
		c.q.schedule()
		c.s.tags++
		c.unacked[c.s.tags] = e
		h = handover{tag: c.s.tags, e: e, redelivered: e.redelivered}
		return nil
	})
	if err != nil || h.e == nil {
		return transport.Delivery{}, false, err
	}
	return c.delivery(h), true, nil
}

// Close returns the unsettled deliveries to the queue.
func (r *reader) Close() error {
	r.c.s.mu.Lock()
	r.c.release()
	r.c.s.mu.Unlock()
	return nil
}
