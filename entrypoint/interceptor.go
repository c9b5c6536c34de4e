package entrypoint

import "context"

// Kind says which kind of entrypoint a run is.
type Kind string

// The kinds of entrypoint Hypha runs.
const (
	KindRPC   Kind = "rpc"   // an RPC method, typed (rpc.Handle) or raw (rpc.HandleRaw)
	KindEvent Kind = "event" // an event handler (events.Handle)
	KindTimer Kind = "timer" // a timer's tick (timer.Handle)
	KindHTTP  Kind = "http"  // an HTTP route (httpentry.Handle)
)

// Info describes one run of an entrypoint to an Interceptor.
type Info struct {
	Kind    Kind
	Service string // the service whose entrypoint runs
	// Name is the entrypoint's name: the RPC method, the event handler, the
	// timer, or the HTTP route's pattern ("GET /users/{id}").
	Name string
}

// Next runs the rest of an entrypoint's run; its error is the run's: the
// method's, handler's, tick's or HTTP handler's.
type Next func(ctx context.Context) error

// Interceptor wraps every run of every entrypoint of a service, whatever its
// kind, which info says: an RPC call, an event handler run, a timer tick, an
// HTTP request. It can act before and after next, change the context, or end
// the run without calling next (returning an error the kind reports as the
// run's). It runs inside the kind's own interceptors (rpc.ServerInterceptor,
// events.HandlerInterceptor) and inside the run's span, in the worker.
//
// For an RPC call the error next returns is the method's; for an HTTP route
// it is the typed handler's, or nil for a plain http.Handler.
type Interceptor func(ctx context.Context, info *Info, next Next) error

// Intercept wraps last in interceptors, the first outermost, for the run info
// describes.
func Intercept(interceptors []Interceptor, info *Info, last Next) Next {
	return Chain(last, interceptors, func(ic Interceptor, next Next) Next {
		return func(ctx context.Context) error { return ic(ctx, info, next) }
	})
}
