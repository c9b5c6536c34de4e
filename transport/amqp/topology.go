package amqp

import (
	"context"
	"errors"
	"fmt"
	"slices"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// DeclareExchange declares ex and records it to declare again after a
// reconnect, and to check while connected (see Options.TopologyCheck). A
// name or kind RabbitMQ cannot take fails with transport.ErrInvalid, before
// anything is sent.
func (b *connection) DeclareExchange(ctx context.Context, ex transport.Exchange) error {
	if err := wire.Exchange(ex); err != nil {
		return fmt.Errorf("hypha: declaring exchange %s: %w", wire.Quote(ex.Name), err)
	}
	sess, err := b.current(ctx)
	if err != nil {
		return err
	}
	err = declareExchange(sess.conn, ex)
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
func (b *connection) DeclareQueue(ctx context.Context, q transport.Queue) error {
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
func (b *connection) DeleteQueue(ctx context.Context, name string) error {
	if err := wire.Name("queue name", name); err != nil {
		return fmt.Errorf("hypha: deleting queue %s: %w", wire.Quote(name), err)
	}
	select { // so that the topology check does not declare it again
	case b.declaring <- struct{}{}:
		defer func() { <-b.declaring }()
	case <-ctx.Done():
		return fmt.Errorf("hypha: deleting queue %q: %w", name, ctx.Err())
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

// declareExchange declares ex on conn, each attempt on a channel of its
// own: a passive declare of a missing exchange closes its channel, as a
// refusal does. A passive declare needs no permission at all.
func declareExchange(conn *amqp091.Connection, ex transport.Exchange) error {
	if ex.Passive {
		err := onChannel(conn, func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclarePassive(ex.Name, ex.Kind, ex.Durable, ex.AutoDelete, false, false, nil)
		})
		if code(err) != amqp091.NotFound {
			if err != nil {
				return fmt.Errorf("hypha: checking exchange %q: %w", ex.Name, err)
			}
			return nil
		}
	}
	err := onChannel(conn, func(ch *amqp091.Channel) error {
		return ch.ExchangeDeclare(ex.Name, ex.Kind, ex.Durable, ex.AutoDelete, false, false, nil)
	})
	switch {
	case err == nil:
		return nil
	case code(err) == amqp091.PreconditionFailed:
		return fmt.Errorf("hypha: exchange %q exists, but not as the durable %s exchange Hypha needs: %w; delete it "+
			"(rabbitmqadmin delete exchange name=%s, or the management UI), and the services that own it declare it again",
			ex.Name, ex.Kind, err, ex.Name)
	case ex.Passive && code(err) == amqp091.AccessRefused:
		return fmt.Errorf("hypha: exchange %q does not exist, and this user may not declare it: %w; start a service "+
			"that declares it first, or give the user the permission configure on exchange %q (rabbitmqctl set_permissions)",
			ex.Name, err, ex.Name)
	}
	return fmt.Errorf("hypha: declaring exchange %q: %w", ex.Name, refused(err, fmt.Sprintf("configure on exchange %q", ex.Name)))
}

// onChannel runs fn on a channel of its own on conn.
func onChannel(conn *amqp091.Connection, fn func(*amqp091.Channel) error) error {
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("hypha: opening channel: %w", err)
	}
	defer ch.Close()
	return fn(ch)
}

// code is the AMQP reply code of err, or 0 when err is not the broker's.
func code(err error) int {
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) {
		return amqpErr.Code
	}
	return 0
}

func (b *connection) declareQueue(ch *amqp091.Channel, q transport.Queue) error {
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
func (b *connection) redeclare(conn *amqp091.Connection) error {
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
	for _, ex := range exchanges {
		if err := declareExchange(conn, ex); err != nil {
			return err
		}
	}
	if len(queues) == 0 {
		return nil
	}
	return onChannel(conn, func(ch *amqp091.Channel) error {
		for _, q := range queues {
			if err := b.declareQueue(ch, q); err != nil {
				return err
			}
		}
		return nil
	})
}

// withChannel runs fn on a short-lived channel, waiting for a connection
// bounded by ctx.
func (b *connection) withChannel(ctx context.Context, fn func(*amqp091.Channel) error) error {
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
func (b *connection) redeclareQueue(conn *amqp091.Connection, name string) error {
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
