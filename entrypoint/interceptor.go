package entrypoint

import "context"

// Kind says which kind of entrypoint a run is.
type Kind string

// The kinds of entrypoint Hypha runs.
const (
	KindRPC   Kind = "rpc"   // an RPC method, typed (rpc.Handle) or raw (rpc.HandleRaw), or a call to one
	KindEvent Kind = "event" // an event handler (events.Handle), or a dispatch of an event
	KindTimer Kind = "timer" // a timer's tick (timer.Handle)
	KindHTTP  Kind = "http"  // an HTTP route (httpentry.Handle)
)

// Call describes to an Interceptor one run of an entrypoint of the service
// (an RPC method, an event handler, a timer tick, an HTTP route) or, on the
// client side, one outgoing RPC call or event dispatch.
type Call struct {
	Kind Kind
	// Client is true for an outgoing RPC call or an event dispatch, false
	// for a run of one of the service's own entrypoints.
	Client bool
	// Service is the service the entrypoint belongs to: the one running it;
	// for an outgoing RPC call the called service; for a dispatch the
	// dispatching service, whose event it is.
	Service string
	// Name is the entrypoint's name: the RPC method, the event handler, the
	// timer, or the HTTP route's pattern ("GET /users/{id}"); for a dispatch
	// the event type.
	Name string
	// Headers are the message's AMQP headers: as received on the server
	// side; on the client side those to be sent, which an interceptor may
	// add to (trace context, say). Nil for timers and HTTP routes.
	Headers map[string]any
	// Spec is what is specific to the kind: a *rpc.CallInfo, an
	// *events.EventInfo, the *timer.Timer that ticks, or the route's
	// *http.Request.
	Spec any
	// Expected, when set, reports whether err is an error the entrypoint
	// declared expected (rpc.Expected, httpentry.Expected), on either side:
	// a client sees it in the reply. See IsExpected.
	Expected func(err error) bool
}

// IsExpected reports whether err is an error the entrypoint declared
// expected; false for nil and for kinds that declare none.
func (c *Call) IsExpected(err error) bool {
	return err != nil && c.Expected != nil && c.Expected(err)
}

// Next runs the rest of a run or call; its error is the run's: the method's,
// handler's, tick's or HTTP handler's, or the outgoing call's or dispatch's.
type Next func(ctx context.Context) error

// Interceptor wraps every run of every entrypoint of a service, whatever its
// kind, and every RPC call and event dispatch it makes, as call says. It can
// act before and after next, change the context, or end the run without
// calling next (returning an error the kind reports as the run's). On the
// server side it runs in the worker, after the request was decoded.
//
// An interceptor that needs more than Call's fields reaches it through
// Spec: an RPC method's result, say, is rpc.CallInfo.Result.
type Interceptor func(ctx context.Context, call *Call, next Next) error

// Intercept wraps last in interceptors, the first outermost, for the run or
// call that call describes.
func Intercept(interceptors []Interceptor, call *Call, last Next) Next {
	h := last
	for i := len(interceptors) - 1; i >= 0; i-- {
		ic, next := interceptors[i], h
		h = func(ctx context.Context) error { return ic(ctx, call, next) }
	}
	return h
}
