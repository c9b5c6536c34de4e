// Package amqp implements transport.Broker over RabbitMQ with amqp091-go.
//
// A connection (see New) is one AMQP connection that heals itself: when the connection
// drops (a broker restart, a network blip, a missed heartbeat) it reconnects
// with a jittered exponential backoff, declares again every exchange and queue
// it declared before, resumes every consumer on the same queues, and lets
// publishing go on. Publishing goes through a channel in confirm mode, so
// Publish returns only once RabbitMQ has taken the message; mandatory messages
// that no queue takes come back as transport.ErrUnroutable. Each consumer has
// a channel of its own with its own prefetch.
//
// A program reaches RabbitMQ through transport/dial's Dial, which maps the
// loaded config onto Options; New is what it calls.
package amqp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/redact"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// Defaults for Options left zero, the same as config's.
const (
	defaultHeartbeat              = 60 * time.Second
	defaultReconnectIntervalStart = 100 * time.Millisecond
	defaultReconnectIntervalMax   = 5 * time.Second
	// defaultMaxMessageSize bounds a message's body: 8 MiB.
	defaultMaxMessageSize = 8 << 20
	// defaultDeliveryLimit is the x-delivery-limit of quorum queues: the
	// default of RabbitMQ 4, set explicitly so that every version does the
	// same (3.x has no limit unless one is set).
	defaultDeliveryLimit = 20
)

// closeTimeout bounds how long Close waits for the broker to acknowledge
// closing channels and the connection.
const closeTimeout = 2 * time.Second

// Options tune a connection.
type Options struct {
	// Heartbeat is the interval at which a dead peer is noticed; zero means
	// 60 s (HEARTBEAT's default), negative turns heartbeats off on both sides.
	Heartbeat time.Duration
	// TLS configures amqps:// connections; nil means the system's roots (or
	// the URI's cacertfile, certfile and keyfile) and the URI's host as the
	// server name.
	TLS *tls.Config
	// LoginMethod is the SASL mechanism: "PLAIN", "AMQPLAIN" or "EXTERNAL"
	// (the TLS client certificate names the user); "" means the URI's
	// auth_mechanism, else PLAIN.
	LoginMethod string
	// Name is shown for the connection in RabbitMQ's management tools.
	Name string
	// MaxMessageSize bounds the body of every message sent or received, in
	// bytes; zero means 8 MiB (MAX_MESSAGE_SIZE's default).
	MaxMessageSize int64
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// Reconnect paces reconnection after the connection is lost, and the
	// first connection when the broker is not up yet.
	Reconnect transport.ReconnectPolicy
	// Retry says how often a publish the broker refused is tried again.
	Retry transport.RetryPolicy
	// QueueType is the type of the durable queues declared through the
	// broker that are neither exclusive nor auto-delete and set no
	// x-queue-type of their own: QueueClassic (also for ""), RabbitMQ's
	// default, or QueueQuorum, replicated across a cluster's nodes.
	QueueType string
	// DeliveryLimit is the x-delivery-limit of the quorum queues QueueType
	// makes: how many times a message may be delivered and returned
	// unacknowledged (a consumer lost, a service stopped mid-work) before
	// the broker drops it, or dead-letters it where the queue has a
	// dead-letter exchange. Zero means 20 (QUEUE_DELIVERY_LIMIT's default,
	// RabbitMQ 4's, set explicitly so that every version does the same).
	DeliveryLimit int
	// TopologyCheck is how often the exchanges, queues and bindings declared
	// through the broker are declared again while connected, so that one
	// deleted under a running service comes back (see watchTopology); zero
	// means 5 s, negative turns the check off.
	TopologyCheck time.Duration
	// OnRestore, when set, is called after each reconnect has restored the
	// connection, its topology and its consumers (for metrics).
	OnRestore func()
	// OnGiveUp, when set, is called once reconnecting has given up (after
	// Reconnect.MaxElapsed) with the reason, instead of logging it: the owner
	// of the connection decides what to say and do, typically to stop. It
	// must not block, and must not call Close before returning: Close waits
	// for the goroutine that calls it.
	OnGiveUp func(error)
}

// connection is a transport.Broker on one self-healing RabbitMQ connection.
type connection struct {
	uris []string     // the nodes, tried in turn
	node atomic.Int32 // index in uris of the node in use or tried next
	opts Options
	log  *slog.Logger
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	connectMu  sync.Mutex // serialises Connect
	supervised bool       // a supervisor keeps the connection; guarded by connectMu

	// declaring serialises the topology check's declarations with
	// DeleteQueue, so that the check cannot declare a queue being deleted.
	// It is a one-slot semaphore rather than a mutex so that a deletion
	// can give up with its context: on a connection the broker blocked, a
	// check waits for answers until the alarm lifts or Close drops it.
	declaring chan struct{}

	mu        sync.Mutex
	sess      *session      // nil while disconnected
	frameMax  int           // the frame_max of sess, or of the last session
	topology  error         // what the last topology check found wrong
	ready     chan struct{} // closed while sess is up
	unblocked chan struct{} // closed unless the broker blocked publishing
	failed    error         // set when reconnecting gave up
	closed    bool
	exchanges map[string]transport.Exchange
	queues    map[string]transport.Queue
	order     []string // queue names in declaration order
	consumers map[*consumer]struct{}
}

// session is one live connection and its publisher.
type session struct {
	conn     *amqp091.Connection
	pub      *publisher
	frameMax int // negotiated frame_max
}

var _ transport.Broker = (*connection)(nil)

// New returns a connection for uri ("amqp://user:pass@host:port/vhost") that
// connects when Connect is called. uri may list several nodes of a cluster,
// separated by commas ("amqp://u:p@node1:5672/,amqp://u:p@node2:5672/"):
// the connection connects to the first that answers, trying them in turn, and
// after losing a connection starts with the next one.
func New(uri string, opts Options) *connection {
	switch {
	case opts.Heartbeat == 0:
		opts.Heartbeat = defaultHeartbeat
	case opts.Heartbeat < 0:
		opts.Heartbeat = 0
	}
	if opts.Reconnect.IntervalStart <= 0 {
		opts.Reconnect.IntervalStart = defaultReconnectIntervalStart
	}
	if opts.Reconnect.IntervalMax <= 0 {
		opts.Reconnect.IntervalMax = defaultReconnectIntervalMax
	}
	if opts.MaxMessageSize <= 0 {
		opts.MaxMessageSize = defaultMaxMessageSize
	}
	if opts.DeliveryLimit <= 0 {
		opts.DeliveryLimit = defaultDeliveryLimit
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	unblocked := make(chan struct{})
	close(unblocked)
	return &connection{
		uris: SplitURIs(uri), opts: opts, log: opts.Logger, done: make(chan struct{}),
		ready: make(chan struct{}), unblocked: unblocked, frameMax: defaultFrameSize,
		exchanges: map[string]transport.Exchange{}, queues: map[string]transport.Queue{},
		consumers: map[*consumer]struct{}{}, declaring: make(chan struct{}, 1),
	}
}

// Connect opens the connection, retrying per Options.Reconnect while the
// broker cannot be reached, until ctx ends. A refusal that retrying cannot
// mend (bad credentials, no such vhost, a malformed URI) fails at once.
// Once connected, the connection keeps itself connected until Close.
func (b *connection) Connect(ctx context.Context) error {
	b.connectMu.Lock()
	defer b.connectMu.Unlock()
	if b.supervised {
		return nil // connected, or reconnecting by itself
	}
	if len(b.uris) == 0 {
		return fmt.Errorf("%w: no URI given", errBadURI)
	}
	for _, uri := range b.uris {
		if _, err := amqp091.ParseURI(uri); err != nil {
			return fmt.Errorf("%w %s: %s", errBadURI, redact.URI(uri), redact.ParseError(uri, err))
		}
	}
	bo := newBackoff(b.opts.Reconnect)
	for attempt := 0; ; attempt++ {
		sess, err := b.establish(ctx)
		if err == nil {
			if len(b.uris) > 1 {
				b.log.Info("hypha: connected to the broker", "node", b.nodeName())
			}
			b.supervised = true
			b.wg.Add(2)
			go b.supervise(sess)
			go b.watchTopology()
			return nil
		}
		if permanent(err) {
			return err
		}
		wait := bo.NextBackOff()
		if wait < 0 {
			return fmt.Errorf("%w (gave up after RECONNECT.MAX_ELAPSED %s)", err, b.opts.Reconnect.MaxElapsed)
		}
		if attempt == 0 {
			b.log.Warn("hypha: broker not reachable yet; retrying", "broker", b.nodes(), "error", err)
		}
		if serr := sleep(ctx, b.done, wait); serr != nil {
			return fmt.Errorf("%w (stopped waiting: %v)", err, serr)
		}
	}
}

// establish dials, declares the recorded topology, resumes the consumers and
// makes the session current.
func (b *connection) establish(ctx context.Context) (*session, error) {
	uri := b.uri()
	conn, fc, err := b.open(ctx, uri)
	if err != nil {
		b.nextNode()
		return nil, fmt.Errorf("hypha: connecting to %s: %w", redact.URI(uri), err)
	}
	sess := &session{conn: conn, pub: newPublisher(conn), frameMax: fc.FrameMax()}
	b.watchBlocked(conn)
	if err := b.redeclare(conn); err != nil {
		conn.Close()
		b.nextNode()
		return nil, err
	}
	// Consumers resume before the session is published, so a failure is a
	// failed attempt, not a restore; once it is published, consumers added
	// meanwhile are resumed too (resume skips those already running).
	if err := b.resumeAll(conn); err != nil {
		conn.Close()
		b.nextNode()
		return nil, err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		conn.Close()
		return nil, transport.ErrClosed
	}
	b.sess = sess
	b.frameMax = sess.frameMax
	b.failed = nil
	b.topology = nil
	close(b.ready)
	b.mu.Unlock()
	if err := b.resumeAll(conn); err != nil {
		conn.Close() // the supervisor reconnects
	}
	return sess, nil
}

// resumeAll resumes every consumer on conn.
func (b *connection) resumeAll(conn *amqp091.Connection) error {
	b.mu.Lock()
	consumers := b.consumerList()
	b.mu.Unlock()
	for _, c := range consumers {
		if err := c.resume(conn); err != nil {
			return fmt.Errorf("hypha: resuming the consumer of queue %q: %w", c.opts.Queue, err)
		}
	}
	return nil
}

// Consume starts a consumer on opts.Queue; it resumes by itself after every
// reconnect. While disconnected it starts with the next connection. A queue
// name or prefetch AMQP cannot carry fails with transport.ErrInvalid.
func (b *connection) Consume(ctx context.Context, opts transport.ConsumeOptions, h transport.Handler) (transport.Consumer, error) {
	if err := wire.Consume(opts); err != nil {
		return nil, fmt.Errorf("hypha: consuming queue %s: %w", wire.Quote(opts.Queue), err)
	}
	c := newConsumer(b, opts, h)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, transport.ErrClosed
	}
	b.consumers[c] = struct{}{}
	sess := b.sess
	b.mu.Unlock()
	if sess != nil {
		if err := c.resume(sess.conn); err != nil {
			b.forget(c)
			return nil, err
		}
	}
	return c, nil
}

func (b *connection) consumerList() []*consumer {
	out := make([]*consumer, 0, len(b.consumers))
	for c := range b.consumers {
		out = append(out, c)
	}
	return out
}

func (b *connection) forget(c *consumer) {
	b.mu.Lock()
	delete(b.consumers, c)
	b.mu.Unlock()
}

// limits bound what the broker sends: by the frame size of the current
// connection, or of the last one while disconnected.
func (b *connection) limits() wire.Limits {
	b.mu.Lock()
	defer b.mu.Unlock()
	return wire.Limits{MaxMessageSize: b.opts.MaxMessageSize, FrameSize: b.frameMax}
}

// live returns the current connection, or nil while disconnected.
func (b *connection) live() *amqp091.Connection {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess == nil {
		return nil
	}
	return b.sess.conn
}

// Close stops reconnecting, closes every consumer, the publishing channel and
// the connection. It does not wait for the broker when it is unreachable.
func (b *connection) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	close(b.done)
	consumers := b.consumerList()
	sess := b.sess
	b.mu.Unlock()
	for _, c := range consumers {
		c.abandon()
	}
	if sess != nil {
		// A blocked broker reads nothing, so it would never answer the
		// close: drop the connection at once. Otherwise close politely,
		// within closeTimeout. Either way the broker requeues what was
		// not acked, so a failed close loses nothing and is not reported.
		deadline := time.Now().Add(closeTimeout)
		if b.blocked() {
			deadline = time.Now()
		} else {
			ctx, cancel := context.WithDeadline(context.Background(), deadline)
			closeWithin(ctx, sess.pub.close)
			cancel()
		}
		if err := sess.conn.CloseDeadline(deadline); err != nil && !errors.Is(err, amqp091.ErrClosed) {
			b.log.Debug("hypha: closing the broker connection", "error", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	for _, c := range consumers {
		_ = waitWithin(ctx, &c.loops) // their channels closed with the connection
	}
	b.wg.Wait()
	return nil
}
