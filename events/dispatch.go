// Package events lets services dispatch events and handle the events of
// others, as nameko's events do and on the same wire: a service dispatches to
// its exchange "<service>.events" with the event type as routing key, and
// each handler consumes a queue bound to it.
//
//	// dispatching, in a service that was given a *events.Dispatcher:
//	err := s.events.Dispatch(ctx, "order_created", order)
//
//	// handling, in another service's Register:
//	events.Handle(r, "send_confirmation", "orders", "order_created", m.SendConfirmation)
//
// Delivery is at least once: messages are persistent and confirmed, and a
// handler's event is acked only after it returns nil. A handler may therefore
// see an event twice; every event carries a unique message_id to drop
// duplicates by.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/ctxwire"
	"github.com/hypha-go/hypha/transport"
)

const (
	// defaultPublishTimeout is DispatcherConfig.PublishTimeout's default, EVENTS.PUBLISH_TIMEOUT's.
	defaultPublishTimeout = 30 * time.Second
	contentTypeJSON       = "application/json"
)

// ExchangeName is the exchange a service's events go to: "<service>.events".
func ExchangeName(source string) string { return source + ".events" }

// DispatcherConfig says how a Dispatcher publishes.
type DispatcherConfig struct {
	// Source is the dispatching service's name: its events go to
	// "<Source>.events".
	Source string
	// PublishTimeout bounds a Dispatch whose context has no sooner deadline:
	// waiting for a reconnect, retries and the confirm. 30 s
	// (EVENTS.PUBLISH_TIMEOUT's default) when zero.
	PublishTimeout time.Duration
	// Interceptors wrap every Dispatch, the first outermost.
	Interceptors []entrypoint.Interceptor
}

// EventDispatcher is what a service needs to dispatch events: the method of
// *Dispatcher that publishes. A service that takes an EventDispatcher (as a
// constructor parameter or an fx.In field, as it would take a *Dispatcher)
// can be given a fake in unit tests. Implementations are safe for concurrent
// use.
type EventDispatcher interface {
	// Dispatch publishes payload as an event of type eventType, as
	// Dispatcher.Dispatch does.
	Dispatch(ctx context.Context, eventType string, payload any) error
}

var _ EventDispatcher = (*Dispatcher)(nil)

// Dispatcher publishes the events of one source service. It is safe for
// concurrent use.
type Dispatcher struct {
	broker transport.Broker
	cfg    DispatcherConfig

	// declaring is held by the one Dispatch declaring the exchange; others
	// wait for it no longer than their own context allows.
	declaring chan struct{}
	declared  atomic.Bool // the exchange is declared (and redeclared on reconnect by the broker)
}

// NewDispatcher returns a dispatcher publishing over conn, usable at once:
// it declares its exchange on its first Dispatch. It does not own conn. A
// program that is not a service (nameko's event_dispatcher) dials its
// connection with dial.Dial:
//
//	conn, err := dial.Dial(ctx, uri)
//	if err != nil { ... }
//	defer conn.Close()
//	d := events.NewDispatcher(conn, events.DispatcherConfig{Source: "orders"})
//	err = d.Dispatch(ctx, "order_created", order)
func NewDispatcher(conn transport.Broker, cfg DispatcherConfig) *Dispatcher {
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = defaultPublishTimeout
	}
	return &Dispatcher{broker: conn, cfg: cfg, declaring: make(chan struct{}, 1)}
}

// declare makes sure the source's exchange exists, once. A Dispatch that
// finds another declaring waits for it only until its own ctx ends.
func (d *Dispatcher) declare(ctx context.Context, exchange string) error {
	if d.declared.Load() {
		return nil
	}
	select {
	case d.declaring <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting for exchange %q to be declared: %w", exchange, ctx.Err())
	}
	defer func() { <-d.declaring }()
	if d.declared.Load() {
		return nil
	}
	if err := d.broker.DeclareExchange(ctx, transport.Exchange{Name: exchange, Kind: transport.Topic, Durable: true}); err != nil {
		return err
	}
	d.declared.Store(true)
	return nil
}

// Dispatch publishes payload, encoded as JSON, as an event of type eventType.
// It returns once the broker has confirmed the event (persistent, on a
// durable exchange), waiting out a lost connection until ctx's deadline or
// the publish timeout, whichever is sooner. The event carries ctx's context
// data and a unique message_id. An event whose confirm was lost with the
// connection is sent again: at least once.
func (d *Dispatcher) Dispatch(ctx context.Context, eventType string, payload any) error {
	if eventType == "" {
		return errors.New("hypha: event type is empty: name the event, e.g. \"order_created\"")
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("hypha: event %s.%s: encoding payload: %w", d.cfg.Source, eventType, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.PublishTimeout)
	defer cancel()
	exchange := ExchangeName(d.cfg.Source)
	if err := d.declare(ctx, exchange); err != nil {
		return fmt.Errorf("hypha: event %s.%s: %w", d.cfg.Source, eventType, err)
	}
	headers := contextdata.Outgoing(ctx, fmt.Sprintf("%s.dispatch.%s", d.cfg.Source, uuid.NewString()))
	if err := ctxwire.Check(headers); err != nil {
		return fmt.Errorf("hypha: event %s.%s: %w: carry less context data", d.cfg.Source, eventType, err)
	}
	p := transport.Publishing{
		Exchange:   exchange,
		RoutingKey: eventType,
		Message: transport.Message{
			Body: body, ContentType: contentTypeJSON, ContentEncoding: "utf-8",
			MessageID: uuid.NewString(), Persistent: true, Headers: headers,
		},
	}
	ev := &EventInfo{
		Source: d.cfg.Source, EventType: eventType, MessageID: p.MessageID,
		Exchange: exchange, RoutingKey: eventType, BodySize: len(body), Headers: p.Headers,
	}
	return entrypoint.Intercept(d.cfg.Interceptors, ev.dispatchCall(), func(ctx context.Context) error {
		return d.publish(ctx, p)
	})(ctx)
}

// publish sends p until the broker confirms it or ctx ends.
func (d *Dispatcher) publish(ctx context.Context, p transport.Publishing) error {
	eventType := p.RoutingKey
	for {
		err := d.broker.Publish(ctx, p)
		if errors.Is(err, transport.ErrUncertain) && ctx.Err() == nil {
			continue // at least once: a duplicate is allowed, a loss is not
		}
		if err != nil {
			return fmt.Errorf("hypha: event %s.%s: %w", d.cfg.Source, eventType, err)
		}
		return nil
	}
}
