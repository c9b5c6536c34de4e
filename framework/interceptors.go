package framework

import (
	"context"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
)

// rpcEntrypoint runs the app's cross-kind interceptors around every call, as
// the innermost server interceptor; none when there are none.
func rpcEntrypoint(ics []entrypoint.Interceptor) []rpc.ServerInterceptor {
	if len(ics) == 0 {
		return nil
	}
	return []rpc.ServerInterceptor{func(ctx context.Context, call *rpc.CallInfo, next rpc.ServerHandler) (any, error) {
		var res any
		info := &entrypoint.Info{Kind: entrypoint.KindRPC, Service: call.Service, Name: call.Method}
		err := entrypoint.Intercept(ics, info, func(ctx context.Context) error {
			var err error
			res, err = next(ctx)
			return err
		})(ctx)
		return res, err
	}}
}

// eventEntrypoint runs the app's cross-kind interceptors around every event
// handler run, as the innermost handler interceptor; none when there are none.
func eventEntrypoint(ics []entrypoint.Interceptor) []events.HandlerInterceptor {
	if len(ics) == 0 {
		return nil
	}
	return []events.HandlerInterceptor{func(ctx context.Context, ev *events.EventInfo, next events.Next) error {
		info := &entrypoint.Info{Kind: entrypoint.KindEvent, Service: ev.Service, Name: ev.Handler}
		return entrypoint.Intercept(ics, info, entrypoint.Next(next))(ctx)
	}}
}
