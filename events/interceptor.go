package events

import (
	"context"

	"github.com/hypha-go/hypha/entrypoint"
)

// EventInfo describes one event to interceptors on either side.
type EventInfo struct {
	Source     string // the dispatching service
	EventType  string
	MessageID  string
	Exchange   string
	RoutingKey string
	BodySize   int
	// Headers are the event's AMQP headers: a dispatch interceptor may add to
	// them (trace context); on the handling side they are as received.
	Headers map[string]any

	// Handling side only.
	Service string // the handling service
	Handler string // the handler's name
	Queue   string
	Attempt int // 1 for the first delivery to this handler, 2 for the first retry, ...
}

// Next runs the rest of a dispatch or of a handler run.
type Next func(ctx context.Context) error

// DispatchInterceptor wraps every Dispatch of a Dispatcher, from before the
// publish to its confirm.
type DispatchInterceptor func(ctx context.Context, ev *EventInfo, next Next) error

// HandlerInterceptor wraps every run of a service's event handlers; the error
// is the handler's.
type HandlerInterceptor func(ctx context.Context, ev *EventInfo, next Next) error

// chain wraps last in interceptors, the first outermost.
func chain[I ~func(context.Context, *EventInfo, Next) error](interceptors []I, ev *EventInfo, last Next) Next {
	return entrypoint.Chain(last, interceptors, func(ic I, next Next) Next {
		return func(ctx context.Context) error { return ic(ctx, ev, next) }
	})
}
