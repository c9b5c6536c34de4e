package events

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/introspection"
	"github.com/hypha-go/hypha/transport"
)

// HandlerType says which instances of which services receive an event.
type HandlerType int

// Handler types, as nameko's.
const (
	// ServicePool: each handling service (and handler) gets each event once,
	// shared among its instances. The default.
	ServicePool HandlerType = iota
	// Singleton: one handler in the whole cluster gets each event.
	Singleton
	// Broadcast: every instance of the handling service gets each event.
	Broadcast
)

// String names the type as nameko's docs do: "service pool", "singleton" or
// "broadcast".
func (t HandlerType) String() string {
	switch t {
	case ServicePool:
		return "service pool"
	case Singleton:
		return "singleton"
	case Broadcast:
		return "broadcast"
	}
	return fmt.Sprintf("HandlerType(%d)", int(t))
}

// goName names the type as Go code writes it, for an option's String.
func (t HandlerType) goName() string {
	switch t {
	case ServicePool:
		return "events.ServicePool"
	case Singleton:
		return "events.Singleton"
	case Broadcast:
		return "events.Broadcast"
	}
	return fmt.Sprintf("events.HandlerType(%d)", int(t))
}

// eventHandler is a registered event handler: the entrypoint Handle adds to a
// service's registry.
type eventHandler struct {
	name        string
	source      string
	eventType   string
	handlerType HandlerType
	identifier  string // broadcast identifier
	stableID    bool   // identifier given by BroadcastIdentifier
	reliable    bool
	requeue     bool
	decode      func(body []byte) (any, error)
	payload     reflect.Type
	call        func(ctx context.Context, payload any) error
}

// EntrypointName is the handler's name, which nameko puts in queue names.
func (h *eventHandler) EntrypointName() string { return h.name }

// Describe describes the handler: the events it handles and how.
func (h *eventHandler) Describe() entrypoint.Description {
	return entrypoint.Description{Kind: entrypoint.KindEvent, Name: h.name, Detail: map[string]any{
		"source": h.source, "event_type": h.eventType, "handler_type": h.handlerType.String(),
		"reliable_delivery": h.reliable, "requeue_on_error": h.requeue,
	}}
}

func init() {
	introspection.Event = func(e any, service string) (introspection.Handler, bool) {
		h, ok := e.(*eventHandler)
		if !ok {
			return introspection.Handler{}, false
		}
		return introspection.Handler{Name: h.name, Source: h.source, EventType: h.eventType,
			HandlerType: h.handlerType.String(), Queue: h.queue(service).Name, Reliable: h.reliable,
			RequeueOnError: h.requeue, Payload: h.payload}, true
	}
}

// Option configures a handler registered with Handle; it prints as the call
// that made it.
type Option interface {
	apply(*eventHandler)
	String() string
}

type option struct {
	name string
	fn   func(*eventHandler)
}

func (o option) apply(h *eventHandler) { o.fn(h) }
func (o option) String() string        { return o.name }

// Type sets the handler type: ServicePool (the default), Singleton or Broadcast.
func Type(t HandlerType) Option {
	return option{"events.Type(" + t.goName() + ")", func(h *eventHandler) { h.handlerType = t }}
}

// BroadcastIdentifier names this instance's queue of a Broadcast handler. With
// reliable delivery it must be stable across restarts (a host name, a pod
// name), or events sent while the instance was down are lost with its old queue.
func BroadcastIdentifier(id string) Option {
	return option{fmt.Sprintf("events.BroadcastIdentifier(%q)", id), func(h *eventHandler) { h.identifier, h.stableID = id, true }}
}

// UnreliableDelivery deletes the handler's queue when its last consumer leaves
// (nameko's reliable_delivery=False), so events sent while no handler runs are
// lost. Without it the queue is durable and kept, and those events wait for
// the handler.
func UnreliableDelivery() Option {
	return option{"events.UnreliableDelivery()", func(h *eventHandler) { h.reliable = false }}
}

// RequeueOnError retries an event whose handler failed (nameko's
// requeue_on_error=True), up to EVENTS.MAX_RETRIES times, each after a longer
// delay (EVENTS.RETRY_DELAY), before dead-lettering it. Without it a failed event
// goes to the dead-letter queue at once.
func RequeueOnError() Option {
	return option{"events.RequeueOnError()", func(h *eventHandler) { h.requeue = true }}
}

// Handle registers fn as the handler name of the service that owns r, for
// events of type eventType dispatched by sourceService. The event's JSON
// payload is decoded into T; one that does not decode, or a null payload
// when T is not a pointer, map, slice or interface, goes straight to the
// dead-letter queue. fn returning nil acks the event; an error (or a panic)
// retries or dead-letters it, per RequeueOnError.
func Handle[T any](r *entrypoint.Registry, name, sourceService, eventType string, fn func(context.Context, T) error, opts ...Option) {
	h := &eventHandler{
		name: name, source: sourceService, eventType: eventType, reliable: true,
		identifier: strings.ReplaceAll(uuid.NewString(), "-", ""), // nameko: uuid4().hex
		decode:     decodePayload[T],
		payload:    reflect.TypeFor[T](),
		call:       func(ctx context.Context, payload any) error { return fn(ctx, payload.(T)) },
	}
	for _, o := range opts {
		o.apply(h)
	}
	if err := h.validate(r.Service()); err != nil {
		r.Fail(err)
		return
	}
	r.Add(h)
}

func (h *eventHandler) validate(service string) error {
	where := fmt.Sprintf("service %q: events.Handle(%q)", service, h.name)
	switch {
	case h.name == "" || h.source == "" || h.eventType == "":
		return fmt.Errorf("%s: the handler name, source service and event type must all be given", where)
	case h.handlerType < ServicePool || h.handlerType > Broadcast:
		return fmt.Errorf("%s: unknown handler type %v", where, h.handlerType)
	case h.handlerType == Broadcast && h.reliable && !h.stableID:
		return fmt.Errorf("%s: a broadcast handler with reliable delivery needs a stable events.BroadcastIdentifier "+
			"(a random one would strand its queue at every restart), or events.UnreliableDelivery()", where)
	case strings.ContainsAny(h.eventType, "*#"):
		return fmt.Errorf("%s: event type %q has a wildcard; handle one event type per handler", where, h.eventType)
	}
	return nil
}

// queue is the queue the handler of service consumes, named as nameko names
// it, with the arguments that make the broker move an event the handler
// rejects, whole, to the handler's dead-letter queue: x-dead-letter-exchange
// "" (the default exchange) and x-dead-letter-routing-key "<queue>.dlq".
// nameko declares the same queue without arguments; see
// EVENTS.NAMEKO_QUEUES.
func (h *eventHandler) queue(service string) transport.Queue {
	q := h.namekoQueue(service)
	q.Args = map[string]any{
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": deadLetterQueue(h, service),
	}
	return q
}

// namekoQueue is the handler's queue as nameko declares it: no arguments.
func (h *eventHandler) namekoQueue(service string) transport.Queue {
	base := fmt.Sprintf("evt-%s-%s", h.source, h.eventType)
	q := transport.Queue{
		Durable:    true,
		AutoDelete: !h.reliable,
		Bindings:   []transport.Binding{{Exchange: ExchangeName(h.source), RoutingKey: h.eventType}},
	}
	switch h.handlerType {
	case Singleton:
		q.Name = base
	case Broadcast:
		q.Name = fmt.Sprintf("%s--%s.%s-%s", base, service, h.name, h.identifier)
		if !h.reliable {
			q.Durable, q.Exclusive = false, true
		}
	default:
		q.Name = fmt.Sprintf("%s--%s.%s", base, service, h.name)
	}
	return q
}
