package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/internal/redact"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// Scheme is the URI scheme of the embedded broker: "memory://" names the
// default broker, "memory://name" another one.
const Scheme = "memory"

// defaultMaxMessageSize bounds a message's body when Options leave it zero:
// 8 MiB, as transport/amqp's.
const defaultMaxMessageSize = 8 << 20

// errDisconnected is what Ready reports after Close.
var errDisconnected = errors.New("hypha: not connected to the broker")

// Options tune a connection to the embedded broker.
type Options struct {
	// MaxMessageSize bounds the body of every message published, in bytes;
	// zero means 8 MiB (MAX_MESSAGE_SIZE's default). A larger message delivered to this
	// connection's consumers arrives malformed, its body dropped.
	MaxMessageSize int64
}

// registry holds the named brokers of the process.
var registry = struct {
	sync.Mutex
	servers map[string]*server
}{servers: map[string]*server{}}

// connection is one connection to a named in-process broker: a
// transport.Broker. Closing it cancels its consumers, returns their
// unsettled deliveries to their queues and deletes its exclusive queues, as
// closing an AMQP connection does; the broker and its other queues live on.
type connection struct {
	s    *server
	opts Options

	closed    bool // guarded by s.mu
	consumers map[*consumer]struct{}
}

var _ transport.Broker = (*connection)(nil)

// New returns a connection to the broker uri names ("memory://" or
// "memory://name"), creating that broker when the process has none of the
// name yet. It fails only for a URI of another scheme.
func New(uri string, opts Options) (*connection, error) {
	name, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = defaultMaxMessageSize
	}
	registry.Lock()
	s, ok := registry.servers[name]
	if !ok {
		s = newServer(name)
		registry.servers[name] = s
	}
	registry.Unlock()
	b := &connection{s: s, opts: opts, consumers: map[*consumer]struct{}{}}
	s.mu.Lock()
	s.conns[b] = struct{}{}
	s.mu.Unlock()
	return b, nil
}

// Reset closes every connection to the broker named name (as Close does)
// and forgets its exchanges, queues and messages, so that the next New
// starts afresh. Tests call it in cleanup; a name no broker has is ignored.
func Reset(name string) {
	registry.Lock()
	s, ok := registry.servers[name]
	delete(registry.servers, name)
	registry.Unlock()
	if !ok {
		return
	}
	s.mu.Lock()
	var consumers []*consumer
	for conn := range s.conns {
		consumers = append(consumers, conn.closeLocked()...)
	}
	s.shutdown()
	s.mu.Unlock()
	waitFor(consumers)
}

func parseURI(uri string) (string, error) {
	scheme, name, ok := strings.Cut(uri, "://")
	if !ok || !strings.EqualFold(scheme, Scheme) {
		return "", fmt.Errorf("hypha: %q is not a memory:// URI", redact.URI(uri))
	}
	return name, nil
}

// Connect does nothing but report ErrClosed after Close: an in-process
// broker is there at once. It exists for the lifecycle transport/amqp has.
func (b *connection) Connect(ctx context.Context) error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.closed {
		return transport.ErrClosed
	}
	return ctx.Err()
}

// Connected reports whether the connection is open: true until Close.
func (b *connection) Connected() bool {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	return !b.closed
}

// Ready reports nil while the connection is open and every consumer not
// cancelled is consuming; a consumer whose queue was deleted is named.
func (b *connection) Ready() error {
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.closed {
		return errDisconnected
	}
	var down []string
	for c := range b.consumers {
		if c.lostQueue {
			down = append(down, c.q.name)
		}
	}
	if len(down) == 0 {
		return nil
	}
	slices.Sort(down)
	return fmt.Errorf("hypha: not consuming queue %q", down[0])
}

// DeclareExchange makes sure the exchange exists as described; declaring
// one that exists with another kind, durability or auto-delete fails with
// PRECONDITION_FAILED, as with RabbitMQ.
func (b *connection) DeclareExchange(ctx context.Context, ex transport.Exchange) error {
	err := wire.Exchange(ex)
	if err == nil {
		err = b.locked(ctx, func() error { return b.s.declareExchange(ex) })
	}
	if err != nil {
		return fmt.Errorf("hypha: declaring exchange %q: %w", ex.Name, err)
	}
	return nil
}

// DeclareQueue makes sure the queue exists as described and adds its
// bindings. Declaring a queue that exists with other properties or
// arguments fails with PRECONDITION_FAILED, and another connection's
// exclusive queue with RESOURCE_LOCKED, as with RabbitMQ; declaring it alike
// restarts its x-expires countdown.
func (b *connection) DeclareQueue(ctx context.Context, q transport.Queue) error {
	if err := b.limits().Queue(q); err != nil {
		return fmt.Errorf("hypha: declaring queue %s: %w", wire.Quote(q.Name), err)
	}
	args, err := normalizeHeaders(q.Args)
	if err != nil {
		return fmt.Errorf("hypha: queue %q arguments: %w", q.Name, err)
	}
	decl := q
	decl.Args, decl.Bindings = args, nil
	var qu *queue
	err = b.locked(ctx, func() error {
		qu, err = b.declareQueue(decl)
		return err
	})
	if err != nil {
		return fmt.Errorf("hypha: declaring queue %q: %w", q.Name, err)
	}
	for _, bind := range q.Bindings {
		err := b.locked(ctx, func() error {
			if qu.deleted {
				return fmt.Errorf("%w - no queue '%s'", errNotFound, q.Name)
			}
			return b.s.bind(qu, bind)
		})
		if err != nil {
			return fmt.Errorf("hypha: binding queue %q to exchange %q with key %q: %w",
				q.Name, bind.Exchange, bind.RoutingKey, err)
		}
	}
	return nil
}

// declareQueue creates the queue or checks it is declared alike. s.mu is held.
func (b *connection) declareQueue(decl transport.Queue) (*queue, error) {
	switch {
	case decl.Name == "":
		return nil, fmt.Errorf("queues named by the broker are %w", errUnsupported)
	case strings.HasPrefix(decl.Name, "amq."):
		return nil, fmt.Errorf("%w - queue name '%s' contains reserved prefix 'amq.'", errRefused, decl.Name)
	}

	if q, ok := b.s.queues[decl.Name]; ok {
		if q.owner != nil && q.owner != b {
			return nil, lockedError(decl.Name)
		}
		if err := checkEquivalent(q.decl, decl); err != nil {
			return nil, err
		}
		q.armUnused()
		return q, nil
	}
	args, err := parseArgs(decl.Args)
	if err != nil {
		return nil, err
	}
	// One process holds the embedded broker, so there is nothing to
	// replicate: a quorum queue is a classic one, declared under
	// RabbitMQ's rules for quorum queues.
	if decl.Args["x-queue-type"] == "quorum" && (!decl.Durable || decl.Exclusive || decl.AutoDelete) {
		return nil, fmt.Errorf("%w - invalid property for queue '%s': a quorum queue must be durable, "+
			"neither exclusive nor auto-delete", errPrecondition, decl.Name)
	}
	q := &queue{s: b.s, name: decl.Name, decl: decl, args: args}
	if decl.Exclusive {
		q.owner = b
	}
	b.s.queues[q.name] = q
	q.armUnused()
	return q, nil
}

func lockedError(name string) error {
	return fmt.Errorf("%w - cannot obtain exclusive access to locked queue '%s'", errLocked, name)
}

// DeleteQueue deletes the queue named name with its messages and bindings;
// its consumers stop, as RabbitMQ cancels them. A queue that does not exist
// is not an error; another connection's exclusive queue is RESOURCE_LOCKED.
func (b *connection) DeleteQueue(ctx context.Context, name string) error {
	if err := wire.Name("queue name", name); err != nil {
		return fmt.Errorf("hypha: deleting queue %s: %w", wire.Quote(name), err)
	}
	err := b.locked(ctx, func() error {
		q, ok := b.s.queues[name]
		switch {
		case !ok:
			return nil
		case q.owner != nil && q.owner != b:
			return lockedError(name)
		}
		b.s.deleteQueue(q)
		return nil
	})
	if err != nil {
		return fmt.Errorf("hypha: deleting queue %q: %w", name, err)
	}
	return nil
}

// Publish routes a copy of p to the queues it reaches and returns once they
// hold it. A missing exchange fails with NOT_FOUND, a mandatory message no
// queue takes with transport.ErrUnroutable; what transport/amqp refuses
// before sending, this refuses alike: a body over Options.MaxMessageSize,
// or properties and headers over RabbitMQ's default frame size, with
// transport.ErrTooLarge, and what AMQP or RabbitMQ cannot take with
// transport.ErrInvalid. As with transport/amqp, a mandatory message without
// a MessageID is given one.
func (b *connection) Publish(ctx context.Context, p transport.Publishing) error {
	if p.Mandatory && p.MessageID == "" {
		p.MessageID = uuid.NewString()
	}
	if err := b.limits().Publishing(p); err != nil {
		return publishError(p, err)
	}
	headers, err := normalizeHeaders(p.Headers)
	if err != nil {
		return publishError(p, err)
	}
	m := &message{Message: p.Message, exchange: p.Exchange, routingKey: p.RoutingKey}
	m.Body, m.Headers = bytes.Clone(p.Body), headers
	if m.Expiration > 0 {
		m.Expiration = time.Duration(max(m.Expiration.Milliseconds(), 1)) * time.Millisecond
	} else {
		m.Expiration = 0
	}
	var n int
	err = b.locked(ctx, func() error {
		n, err = b.s.publish(m)
		return err
	})
	switch {
	case err != nil:
		return publishError(p, err)
	case p.Mandatory && n == 0:
		return transport.ErrUnroutable
	}
	return nil
}

func publishError(p transport.Publishing, err error) error {
	return fmt.Errorf("hypha: publishing to exchange %s routing key %s: %w", wire.Quote(p.Exchange), wire.Quote(p.RoutingKey), err)
}

// Consume starts delivering messages from opts.Queue to h, at most
// opts.Prefetch unacknowledged at once (no bound when zero). Consumers of one
// queue take turns; with x-single-active-consumer only the first one still
// subscribed receives.
func (b *connection) Consume(ctx context.Context, opts transport.ConsumeOptions, h transport.Handler) (transport.Consumer, error) {
	if err := wire.Consume(opts); err != nil {
		return nil, fmt.Errorf("hypha: consuming queue %s: %w", wire.Quote(opts.Queue), err)
	}
	var c *consumer
	err := b.locked(ctx, func() error {
		q, ok := b.s.queues[opts.Queue]
		switch {
		case !ok:
			return fmt.Errorf("%w - no queue '%s'", errNotFound, opts.Queue)
		case q.owner != nil && q.owner != b:
			return lockedError(opts.Queue)
		}
		c = newConsumer(b, q, opts.Prefetch, h)
		q.consumers = append(q.consumers, c)
		q.hadConsumer = true
		q.disarmUnused()
		b.consumers[c] = struct{}{}
		go c.run()
		q.dispatch(time.Now())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hypha: consuming queue %q: %w", opts.Queue, err)
	}
	return c, nil
}

// Close closes the connection: its consumers stop (their handlers are
// waited for at most 2 seconds), their unsettled deliveries go back to their
// queues, and its exclusive queues are deleted. Later calls fail with
// transport.ErrClosed.
func (b *connection) Close() error {
	b.s.mu.Lock()
	consumers := b.closeLocked()
	b.s.mu.Unlock()
	waitFor(consumers)
	return nil
}

// closeLocked closes the connection and returns its consumers, for the
// caller to wait for once s.mu is released. s.mu is held.
func (b *connection) closeLocked() []*consumer {
	if b.closed {
		return nil
	}
	b.closed = true
	consumers := make([]*consumer, 0, len(b.consumers))
	for c := range b.consumers {
		consumers = append(consumers, c)
	}
	for _, c := range consumers {
		c.release()
	}
	for _, q := range b.s.queues {
		if q.owner == b {
			b.s.deleteQueue(q)
		}
	}
	delete(b.s.conns, b)
	return consumers
}

// limits bound what the connection takes, as transport/amqp's bound what
// it sends: the frame size is RabbitMQ's default.
func (b *connection) limits() wire.Limits {
	return wire.Limits{MaxMessageSize: b.opts.MaxMessageSize, FrameSize: wire.DefaultFrameSize}
}

// locked runs fn under the server's mutex on an open connection.
func (b *connection) locked(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if b.closed {
		return transport.ErrClosed
	}
	return fn()
}

// waitFor waits for the consumers' handlers to return, at most closeTimeout
// in all.
func waitFor(consumers []*consumer) {
	deadline := time.NewTimer(closeTimeout)
	defer deadline.Stop()
	for _, c := range consumers {
		select {
		case <-c.done:
		case <-deadline.C:
			return
		}
	}
}
