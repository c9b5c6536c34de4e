package events

import "github.com/hypha-go/hypha/entrypoint"

// EventInfo describes one event to the interceptors on either side: the
// Spec of their entrypoint.Call, whose Kind is entrypoint.KindEvent. On the
// dispatching side (Call.Client) they wrap every Dispatch, from before the
// publish to its confirm; on the handling side every run of a handler, the
// payload's decoding included.
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

// dispatchCall is the entrypoint.Call of a dispatch.
func (ev *EventInfo) dispatchCall() *entrypoint.Call {
	return &entrypoint.Call{Kind: entrypoint.KindEvent, Client: true, Service: ev.Source, Name: ev.EventType,
		Headers: ev.Headers, Spec: ev}
}

// handlerCall is the entrypoint.Call of a handler run.
func (ev *EventInfo) handlerCall() *entrypoint.Call {
	return &entrypoint.Call{Kind: entrypoint.KindEvent, Service: ev.Service, Name: ev.Handler, Headers: ev.Headers, Spec: ev}
}
