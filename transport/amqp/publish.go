package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// returnsBuffer bounds the returned messages held between a basic.return and
// the confirm that follows it.
const returnsBuffer = 256

// errNotSent: the channel or connection was gone before the message was
// written, so sending it again cannot duplicate it.
var errNotSent = errors.New("hypha: message not sent")

// errNacked: the broker refused the message (basic.nack).
var errNacked = errors.New("hypha: broker refused the message")

// Publish sends p and waits for the broker's confirm. While the connection is
// down it waits for the reconnect, and a message the broker refused is sent
// again per Options.Retry, both bounded by ctx. A message whose confirm was
// lost with the connection fails with transport.ErrUncertain: it may or may
// not have arrived, and only the caller knows whether sending it twice is safe.
// A message over the limits (its body over Options.MaxMessageSize, its
// properties and headers over the connection's frame size) fails with
// transport.ErrTooLarge, and one AMQP or RabbitMQ cannot take (see
// transport.ErrInvalid) with transport.ErrInvalid: neither is ever sent,
// nor sent again.
func (b *connection) Publish(ctx context.Context, p transport.Publishing) error {
	if p.Mandatory && p.MessageID == "" {
		p.MessageID = uuid.NewString()
	}
	// amqp091-go closes the whole connection for what it cannot encode,
	// and RabbitMQ for some of what it cannot take; the message would then
	// go again after the reconnect, in a loop. Every check comes first.
	lim := b.limits()
	if err := lim.Publishing(p); err != nil {
		return b.publishError(p, err)
	}
	msg, err := publishing(p.Message)
	if err != nil {
		return b.publishError(p, err)
	}
	for retries := 0; ; {
		sess, err := b.current(ctx)
		if err != nil {
			return b.publishError(p, err)
		}
		// A reconnect, to another node say, may have brought another frame size.
		if sess.frameMax != lim.FrameSize {
			lim.FrameSize = sess.frameMax
			if err := lim.Publishing(p); err != nil {
				return b.publishError(p, err)
			}
		}
		err = sess.pub.publish(ctx, p, msg)
		switch {
		case errors.Is(err, errNotSent):
			if ctx.Err() != nil {
				return b.publishError(p, ctx.Err())
			}
			// The connection is going; current waits for the next one.
			if err := sleep(ctx, b.done, 10*time.Millisecond); err != nil {
				return b.publishError(p, err)
			}
		case errors.Is(err, errNacked) && retries < b.opts.Retry.MaxRetries:
			if err := sleep(ctx, b.done, retryInterval(b.opts.Retry, retries)); err != nil {
				return b.publishError(p, err)
			}
			retries++
		case err != nil && !errors.Is(err, transport.ErrUnroutable):
			return b.publishError(p, err)
		default:
			return err
		}
	}
}

// retryInterval is r's wait before retry number n (from 0): IntervalStart,
// then IntervalStep longer each time, at most IntervalMax.
func retryInterval(r transport.RetryPolicy, n int) time.Duration {
	d := r.IntervalStart + time.Duration(n)*r.IntervalStep
	if r.IntervalMax > 0 && d > r.IntervalMax {
		d = r.IntervalMax
	}
	return d
}

func (b *connection) publishError(p transport.Publishing, err error) error {
	return fmt.Errorf("hypha: publishing to exchange %s routing key %s: %w", wire.Quote(p.Exchange), wire.Quote(p.RoutingKey),
		refusedTopic(err, fmt.Sprintf("write on exchange %q", exchangeName(p.Exchange)),
			fmt.Sprintf("write on key %q of exchange %q", p.RoutingKey, p.Exchange)))
}

// publisher owns one connection's confirm-mode channel for publishing.
//
// RabbitMQ sends basic.return for an unroutable mandatory message before the
// basic.ack that confirms it, and amqp091-go hands the two to different Go
// channels. amqp091-go dispatches frames in order and the returns channel is
// buffered, so by the time a confirm is seen its return is already buffered:
// after each confirm the publisher drains the buffer into a map keyed by
// message id and looks its own message up there. A return names its message
// only by that id, and two publishes of one message (copies of one event to
// two queues) share it, so a mandatory publish waits for the confirm of any
// other with its id on the channel before it is sent: a return then belongs
// to the one publish in flight with its id.
type publisher struct {
	conn *amqp091.Connection

	mu       sync.Mutex
	ch       *amqp091.Channel
	closeErr chan *amqp091.Error // the channel's close reason
	returns  chan amqp091.Return
	returned map[string]time.Time
	reasons  map[chan *amqp091.Error]error
	// inflight holds the mandatory publishes not yet confirmed, by message
	// id; each channel closes when its publish's confirm has come.
	inflight map[string]chan struct{}
}

func newPublisher(conn *amqp091.Connection) *publisher {
	return &publisher{conn: conn, returned: map[string]time.Time{}, inflight: map[string]chan struct{}{}}
}

func (p *publisher) publish(ctx context.Context, msg transport.Publishing, pub amqp091.Publishing) error {
	if msg.Mandatory {
		if err := p.claim(ctx, msg.MessageID); err != nil {
			return err
		}
	}
	p.mu.Lock()
	ch, closeErr, err := p.channel()
	p.mu.Unlock()
	if err != nil {
		p.release(msg, nil)
		return err
	}
	// Not under p.mu: a write held up by the broker must not hold up
	// every other publisher (amqp091-go's Channel is safe for this).
	confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, msg.Exchange, msg.RoutingKey, msg.Mandatory, false, pub)
	if err != nil {
		p.release(msg, nil)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %v", errNotSent, err)
	}
	defer p.release(msg, confirm)
	acked, err := confirm.WaitContext(ctx)
	switch {
	case err != nil:
		return err
	case !acked && ch.IsClosed():
		// amqp091-go nacks pending confirms when the channel closes: with
		// the connection, the message's fate is unknown; alone, the broker
		// closed it for an error that retrying would repeat (404: no such
		// exchange), and other publishes go on on a new channel.
		if p.conn.IsClosed() {
			return transport.ErrUncertain
		}
		return p.channelError(closeErr)
	case !acked:
		// A quorum queue's channel can keep nacking every publish after
		// its leader moved (seen on RabbitMQ 3.10 when the publisher came
		// back within moments of a node's loss): the retry goes out on a
		// new channel.
		p.discard(ch)
		return errNacked
	case msg.Mandatory && p.wasReturned(msg.MessageID):
		return transport.ErrUnroutable
	}
	return nil
}

// channelError is the reason the broker gave for closing a channel: read
// once from closeErr, kept for the other publishes that were on the channel.
func (p *publisher) channelError(closeErr chan *amqp091.Error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err, ok := p.reasons[closeErr]; ok {
		return err
	}
	// Closed with no reason given: Hypha closed it (see discard), and the
	// publish may go again on the next channel.
	var err error = errNacked
	select {
	case e, ok := <-closeErr:
		if ok && e != nil {
			err = e
		}
	case <-time.After(time.Second):
	}
	p.reasons = map[chan *amqp091.Error]error{closeErr: err} // only the latest channel matters
	return err
}

// channel returns the open confirm channel, opening a new one after a
// channel-level error closed the last. p.mu is held.
func (p *publisher) channel() (*amqp091.Channel, chan *amqp091.Error, error) {
	if p.ch != nil && !p.ch.IsClosed() {
		return p.ch, p.closeErr, nil
	}
	ch, err := p.conn.Channel()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: opening publish channel: %v", errNotSent, err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, nil, fmt.Errorf("%w: confirm mode: %v", errNotSent, err)
	}
	p.ch = ch
	p.closeErr = ch.NotifyClose(make(chan *amqp091.Error, 1))
	p.returns = ch.NotifyReturn(make(chan amqp091.Return, returnsBuffer))
	go p.sweep(ch.NotifyClose(make(chan *amqp091.Error, 1)))
	return ch, p.closeErr, nil
}

// sweep drains returns every second until the channel closes, so that
// returns nobody claims (their publisher gave up before the confirm) never
// fill the buffer and stall the connection's reader.
func (p *publisher) sweep(closed <-chan *amqp091.Error) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			p.mu.Lock()
			p.drain()
			p.mu.Unlock()
		case <-closed:
			return
		}
	}
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

// claim waits until no other mandatory publish with message id id awaits
// its confirm, then marks this one in flight.
func (p *publisher) claim(ctx context.Context, id string) error {
	for {
		p.mu.Lock()
		busy, ok := p.inflight[id]
		if !ok {
			p.inflight[id] = make(chan struct{})
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// release ends the claim of a mandatory publish once its confirm has come
// (at once when nothing was sent, confirm nil), dropping its return, if
// any, so that the next publish with its id starts clean. A publisher that
// gave up waiting leaves the release to a goroutine: until the confirm, a
// return may still come for its message.
func (p *publisher) release(msg transport.Publishing, confirm *amqp091.DeferredConfirmation) {
	if !msg.Mandatory {
		return
	}
	if confirm != nil {
		select {
		case <-confirm.Done():
		default:
			go func() {
				<-confirm.Done()
				p.release(msg, nil)
			}()
			return
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drain()
	delete(p.returned, msg.MessageID)
	close(p.inflight[msg.MessageID])
	delete(p.inflight, msg.MessageID)
}

// discard closes ch, when it is still the publish channel, so that the next
// publish opens another.
func (p *publisher) discard(ch *amqp091.Channel) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ch == ch {
		p.ch = nil
		go ch.Close() // not under p.mu: close waits for the broker
	}
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
	pub.DeliveryMode = amqp091.Transient
	if m.Persistent {
		pub.DeliveryMode = amqp091.Persistent
	}
	pub.Expiration = wire.Expiration(m.Expiration)
	return pub, nil
}
