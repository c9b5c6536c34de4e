package amqp

import (
	"context"
	"fmt"
	"slices"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// DeclareExchange declares ex and records it to declare again after a
// reconnect. A name or kind RabbitMQ cannot take fails with
// transport.ErrInvalid, before anything is sent.
func (b *Broker) DeclareExchange(ctx context.Context, ex transport.Exchange) error {
	if err := wire.Exchange(ex); err != nil {
		return fmt.Errorf("hypha: declaring exchange %s: %w", wire.Quote(ex.Name), err)
	}
	err := b.withChannel(ctx, func(ch *amqp091.Channel) error { return declareExchange(ch, ex) })
	if err == nil {
		b.mu.Lock()
		b.exchanges[ex.Name] = ex
		b.mu.Unlock()
	}
	return err
}

// DeclareQueue declares q and its bindings, and records them to declare again
// after a reconnect. A name, key or argument RabbitMQ cannot take fails with
// transport.ErrInvalid (arguments over the frame size with
// transport.ErrTooLarge), before anything is sent.
func (b *Broker) DeclareQueue(ctx context.Context, q transport.Queue) error {
	if err := b.limits().Queue(q); err != nil {
		return fmt.Errorf("hypha: declaring queue %s: %w", wire.Quote(q.Name), err)
	}
	err := b.withChannel(ctx, func(ch *amqp091.Channel) error { return b.declareQueue(ch, q) })
	if err == nil {
		b.mu.Lock()
		if _, ok := b.queues[q.Name]; !ok {
			b.order = append(b.order, q.Name)
		}
		b.queues[q.Name] = q
		b.mu.Unlock()
	}
	return err
}

// DeleteQueue forgets the queue named name, so that a reconnect does not
// declare it again, and deletes it.
func (b *Broker) DeleteQueue(ctx context.Context, name string) error {
	if err := wire.Name("queue name", name); err != nil {
		return fmt.Errorf("hypha: deleting queue %s: %w", wire.Quote(name), err)
	}
	b.mu.Lock()
	if _, ok := b.queues[name]; ok {
		delete(b.queues, name)
		b.order = slices.DeleteFunc(b.order, func(n string) bool { return n == name })
	}
	b.mu.Unlock()
	return b.withChannel(ctx, func(ch *amqp091.Channel) error {
		if _, err := ch.QueueDelete(name, false, false, false); err != nil {
			return fmt.Errorf("hypha: deleting queue %q: %w", name, err)
		}
		return nil
	})
}

func declareExchange(ch *amqp091.Channel, ex transport.Exchange) error {
	if err := ch.ExchangeDeclare(ex.Name, ex.Kind, ex.Durable, ex.AutoDelete, false, false, nil); err != nil {
		return fmt.Errorf("hypha: declaring exchange %q: %w", ex.Name, refused(err, fmt.Sprintf("configure on exchange %q", ex.Name)))
	}
	return nil
}

func (b *Broker) declareQueue(ch *amqp091.Channel, q transport.Queue) error {
	args, err := table(b.typed(q).Args)
	if err != nil {
		return fmt.Errorf("hypha: queue %q arguments: %w", q.Name, err)
	}
	if _, err := ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, args); err != nil {
		return b.declareError(q, err)
	}
	for _, bind := range q.Bindings {
		if err := ch.QueueBind(q.Name, bind.RoutingKey, bind.Exchange, false, nil); err != nil {
			return fmt.Errorf("hypha: binding queue %q to exchange %q with key %q: %w",
				q.Name, bind.Exchange, bind.RoutingKey, refusedTopic(err,
					fmt.Sprintf("write on queue %q and read on exchange %q", q.Name, exchangeName(bind.Exchange)),
					fmt.Sprintf("read on key %q of exchange %q", bind.RoutingKey, bind.Exchange)))
		}
	}
	return nil
}

// redeclare declares every recorded exchange and queue on a new connection.
func (b *Broker) redeclare(conn *amqp091.Connection) error {
	b.mu.Lock()
	exchanges := make([]transport.Exchange, 0, len(b.exchanges))
	for _, ex := range b.exchanges {
		exchanges = append(exchanges, ex)
	}
	queues := make([]transport.Queue, 0, len(b.order))
	for _, name := range b.order {
		queues = append(queues, b.queues[name])
	}
	b.mu.Unlock()
	if len(exchanges) == 0 && len(queues) == 0 {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("hypha: opening channel: %w", err)
	}
	defer ch.Close()
	for _, ex := range exchanges {
		if err := declareExchange(ch, ex); err != nil {
			return err
		}
	}
	for _, q := range queues {
		if err := b.declareQueue(ch, q); err != nil {
			return err
		}
	}
	return nil
}

// withChannel runs fn on a short-lived channel, waiting for a connection
// bounded by ctx.
func (b *Broker) withChannel(ctx context.Context, fn func(*amqp091.Channel) error) error {
	sess, err := b.current(ctx)
	if err != nil {
		return err
	}
	ch, err := sess.conn.Channel()
	if err != nil {
		return fmt.Errorf("hypha: opening channel: %w", err)
	}
	defer ch.Close()
	return fn(ch)
}

// redeclareQueue declares the queue named name again, with its bindings, when
// it was declared through this broker; others are left alone.
func (b *Broker) redeclareQueue(conn *amqp091.Connection, name string) error {
	b.mu.Lock()
	q, ok := b.queues[name]
	b.mu.Unlock()
	if !ok {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("hypha: opening channel: %w", err)
	}
	defer ch.Close()
	return b.declareQueue(ch, q)
}
