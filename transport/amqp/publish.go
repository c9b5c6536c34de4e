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

// returnsBuffer bounds the returned messages held between a basic.return and
// the confirm that follows it.
const returnsBuffer = 256

// publisher owns the confirm-mode channel that every publish goes through.
//
// RabbitMQ sends basic.return for an unroutable mandatory message before the
// basic.ack that confirms it, and amqp091-go hands the two to different Go
// channels. amqp091-go dispatches frames in order and the returns channel is
// buffered, so by the time a confirm is seen its return is already buffered:
// after each confirm the publisher drains the buffer into a map keyed by
// message id and looks its own message up there.
type publisher struct {
	conn *amqp091.Connection

	mu       sync.Mutex
	ch       *amqp091.Channel
	returns  chan amqp091.Return
	returned map[string]time.Time
}

func (p *publisher) publish(ctx context.Context, msg transport.Publishing) error {
	if msg.Mandatory && msg.MessageID == "" {
		msg.MessageID = uuid.NewString()
	}
	pub, err := publishing(msg.Message)
	if err != nil {
		return fmt.Errorf("hypha: message to exchange %q routing key %q: %w", msg.Exchange, msg.RoutingKey, err)
	}
	p.mu.Lock()
	ch, err := p.channel()
	if err != nil {
		p.mu.Unlock()
		return err
	}
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, msg.Exchange, msg.RoutingKey, msg.Mandatory, false, pub)
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("hypha: publishing to exchange %q routing key %q: %w", msg.Exchange, msg.RoutingKey, err)
	}
	acked, err := confirm.WaitContext(ctx)
	if msg.Mandatory {
		defer p.forget(msg.MessageID)
	}
	if err != nil {
		return err
	}
	if !acked {
		return fmt.Errorf("hypha: broker refused message to exchange %q routing key %q", msg.Exchange, msg.RoutingKey)
	}
	if msg.Mandatory && p.wasReturned(msg.MessageID) {
		return fmt.Errorf("exchange %q routing key %q: %w", msg.Exchange, msg.RoutingKey, transport.ErrUnroutable)
	}
	return nil
}

// channel returns the open confirm channel, opening a new one after a
// channel-level error closed the last. p.mu is held.
func (p *publisher) channel() (*amqp091.Channel, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, nil
	}
	ch, err := p.conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("hypha: opening publish channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("hypha: confirm mode: %w", err)
	}
	p.ch = ch
	p.returns = ch.NotifyReturn(make(chan amqp091.Return, returnsBuffer))
	p.returned = map[string]time.Time{}
	return ch, nil
}

// wasReturned drains the returns seen so far and reports whether id was among them.
func (p *publisher) wasReturned(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drain()
	_, ok := p.returned[id]
	return ok
}

// drain moves buffered returns into the map, dropping entries nobody claimed
// within a minute (their publisher gave up before the confirm). p.mu is held.
func (p *publisher) drain() {
	now := time.Now()
	for {
		select {
		case r, ok := <-p.returns:
			if !ok {
				return
			}
			p.returned[r.MessageId] = now
		default:
			for id, at := range p.returned {
				if now.Sub(at) > time.Minute {
					delete(p.returned, id)
				}
			}
			return
		}
	}
}

func (p *publisher) forget(id string) {
	p.mu.Lock()
	delete(p.returned, id)
	p.mu.Unlock()
}

func (p *publisher) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch != nil {
		p.ch.Close()
	}
}

func publishing(m transport.Message) (amqp091.Publishing, error) {
	headers, err := table(m.Headers)
	if err != nil {
		return amqp091.Publishing{}, err
	}
	pub := amqp091.Publishing{
		Headers:         headers,
		ContentType:     m.ContentType,
		ContentEncoding: m.ContentEncoding,
		CorrelationId:   m.CorrelationID,
		ReplyTo:         m.ReplyTo,
		MessageId:       m.MessageID,
		Body:            m.Body,
	}
	if m.Persistent {
		pub.DeliveryMode = amqp091.Persistent
	}
	if m.Expiration > 0 {
		pub.Expiration = fmt.Sprint(max(m.Expiration.Milliseconds(), 1))
	}
	return pub, nil
}
