// Package amqp implements transport.Broker over RabbitMQ with amqp091-go.
//
// One Broker is one AMQP connection. Publishing goes through a channel in
// confirm mode, so Publish returns only once RabbitMQ has taken the message;
// mandatory messages that no queue takes come back as transport.ErrUnroutable.
// Each consumer has a channel of its own with its own prefetch, so one slow
// consumer never holds back another's deliveries.
package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
)

// DefaultHeartbeat is the AMQP heartbeat interval used when Options leave it zero.
const DefaultHeartbeat = 60 * time.Second

// Options tune a connection.
type Options struct {
	// Heartbeat is the interval at which a dead peer is noticed; zero means
	// DefaultHeartbeat, negative turns heartbeats off.
	Heartbeat time.Duration
	// Name is shown for the connection in RabbitMQ's management tools.
	Name string
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
}

// Broker is a transport.Broker on one RabbitMQ connection.
type Broker struct {
	uri  string
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	conn      *amqp091.Connection
	pub       *publisher
	consumers map[*consumer]struct{}
	closed    bool
}

var _ transport.Broker = (*Broker)(nil)

// errNotConnected is returned by a Broker used before Connect.
var errNotConnected = errors.New("hypha: broker not connected yet: call Connect first")

// New returns a Broker for uri ("amqp://user:pass@host:port/vhost") that
// connects when Connect is called.
func New(uri string, opts Options) *Broker {
	switch {
	case opts.Heartbeat == 0:
		opts.Heartbeat = DefaultHeartbeat
	case opts.Heartbeat < 0:
		opts.Heartbeat = 0
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Broker{uri: uri, opts: opts, log: log, consumers: map[*consumer]struct{}{}}
}

// Dial returns a Broker connected to uri.
func Dial(ctx context.Context, uri string, opts Options) (*Broker, error) {
	b := New(uri, opts)
	if err := b.Connect(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Connect opens the connection; ctx bounds the TCP connect and the handshake.
func (b *Broker) Connect(ctx context.Context) error {
	props := amqp091.NewConnectionProperties()
	if b.opts.Name != "" {
		props.SetClientConnectionName(b.opts.Name)
	}
	cfg := amqp091.Config{Heartbeat: b.opts.Heartbeat, Properties: props, Locale: "en_US"}
	if deadline, ok := ctx.Deadline(); ok {
		cfg.Dial = amqp091.DefaultDial(time.Until(deadline))
	}
	conn, err := amqp091.DialConfig(b.uri, cfg)
	if err != nil {
		return fmt.Errorf("hypha: connecting to %s: %w", redact(b.uri), err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		conn.Close()
		return transport.ErrClosed
	}
	b.conn = conn
	b.pub = &publisher{conn: conn}
	go b.watch(conn.NotifyClose(make(chan *amqp091.Error, 1)))
	return nil
}

// connection returns the open connection, or why there is none.
func (b *Broker) connection() (*amqp091.Connection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, transport.ErrClosed
	case b.conn == nil:
		return nil, errNotConnected
	}
	return b.conn, nil
}

// watch logs an unexpected loss of the connection once.
func (b *Broker) watch(closed <-chan *amqp091.Error) {
	if err, ok := <-closed; ok && err != nil {
		b.log.Error("hypha: broker connection lost", "reason", err.Reason, "code", err.Code)
	}
}

// DeclareExchange declares ex on a short-lived channel.
func (b *Broker) DeclareExchange(ctx context.Context, ex transport.Exchange) error {
	return b.withChannel(func(ch *amqp091.Channel) error {
		err := ch.ExchangeDeclare(ex.Name, ex.Kind, ex.Durable, ex.AutoDelete, false, false, nil)
		if err != nil {
			return fmt.Errorf("hypha: declaring exchange %q: %w", ex.Name, err)
		}
		return nil
	})
}

// DeclareQueue declares q and its bindings on a short-lived channel.
func (b *Broker) DeclareQueue(ctx context.Context, q transport.Queue) error {
	return b.withChannel(func(ch *amqp091.Channel) error {
		args, err := table(q.Args)
		if err != nil {
			return fmt.Errorf("hypha: queue %q arguments: %w", q.Name, err)
		}
		if _, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, args); err != nil {
			return fmt.Errorf("hypha: declaring queue %q: %w", q.Name, err)
		}
		for _, bind := range q.Bindings {
			if err := ch.QueueBind(q.Name, bind.RoutingKey, bind.Exchange, false, nil); err != nil {
				return fmt.Errorf("hypha: binding queue %q to exchange %q with key %q: %w",
					q.Name, bind.Exchange, bind.RoutingKey, err)
			}
		}
		return nil
	})
}

func (b *Broker) withChannel(fn func(*amqp091.Channel) error) error {
	conn, err := b.connection()
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("hypha: opening channel: %w", err)
	}
	defer ch.Close()
	return fn(ch)
}

// Publish sends p on the confirm channel and waits for the broker's confirm.
func (b *Broker) Publish(ctx context.Context, p transport.Publishing) error {
	if _, err := b.connection(); err != nil {
		return err
	}
	return b.pub.publish(ctx, p)
}

// Consume opens a channel with the given prefetch and delivers from opts.Queue to h.
func (b *Broker) Consume(ctx context.Context, opts transport.ConsumeOptions, h transport.Handler) (transport.Consumer, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return nil, transport.ErrClosed
	case b.conn == nil:
		return nil, errNotConnected
	}
	c, err := startConsumer(b, opts, h)
	if err != nil {
		return nil, err
	}
	b.consumers[c] = struct{}{}
	return c, nil
}

func (b *Broker) forget(c *consumer) {
	b.mu.Lock()
	delete(b.consumers, c)
	b.mu.Unlock()
}

// Close closes every consumer, the publishing channel and the connection.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	consumers := make([]*consumer, 0, len(b.consumers))
	for c := range b.consumers {
		consumers = append(consumers, c)
	}
	conn, pub := b.conn, b.pub
	b.mu.Unlock()
	var errs []error
	for _, c := range consumers {
		errs = append(errs, c.Close())
	}
	if conn == nil {
		return errors.Join(errs...)
	}
	pub.close()
	if err := conn.Close(); err != nil && !errors.Is(err, amqp091.ErrClosed) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
