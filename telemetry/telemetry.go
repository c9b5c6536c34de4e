// Package telemetry traces and measures a service's entrypoints and the calls
// it makes, each written once as an entrypoint.Interceptor for every kind and
// both sides: RPC calls (server and client), event handler runs and
// dispatches, and timer ticks. HTTP routes are traced and measured by
// otelhttp, which the HTTP kind wraps around each route; these interceptors
// let them through untouched, so that a request never has two spans.
//
// The framework adds both when TRACING and METRICS are on, outermost, so
// that the app's interceptors run inside the span:
//
//	tracing := telemetry.Tracing(tp, propagation.TraceContext{})
//	metrics, err := telemetry.Metrics(mp, "orders") // the services it calls
//	client := rpc.NewClient(conn, rpc.Config{
//		Interceptors: []entrypoint.Interceptor{tracing, metrics}})
package telemetry

import (
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
)

// scope is the instrumentation scope of a kind's spans and metrics: the
// package of the kind, as it was before telemetry had a package of its own.
func scope(kind entrypoint.Kind) string {
	switch kind {
	case entrypoint.KindEvent:
		return "github.com/hypha-go/hypha/events"
	case entrypoint.KindTimer:
		return "github.com/hypha-go/hypha/timer"
	}
	return "github.com/hypha-go/hypha/rpc"
}

// specs are the Specs of a call of each kind telemetry covers: rpc, event,
// timer; the others are nil.
func specs(call *entrypoint.Call) (rc *rpc.CallInfo, ev *events.EventInfo, timer bool) {
	switch call.Kind {
	case entrypoint.KindRPC:
		rc, _ = call.Spec.(*rpc.CallInfo)
	case entrypoint.KindEvent:
		ev, _ = call.Spec.(*events.EventInfo)
	case entrypoint.KindTimer:
		timer = !call.Client
	}
	return rc, ev, timer
}
