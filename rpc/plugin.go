package rpc

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
)

// Plugin serves a service's RPC methods, typed and raw, on its request queue
// "rpc-<service>", the framework's built-in kind entrypoint.KindRPC. The
// service's interceptors (telemetry's, then the app's) wrap every call. Each
// server remembers the requests it has started (by message id and
// correlation id, until their deadline, at most 5 minutes and 100,000
// requests) and acks and drops a copy of one it answered; that record is the
// instance's own.
//
// A program that serves RPC without package framework calls
// Plugin().Serve(&entrypoint.Service{...}) and then the server's Start.
func Plugin() entrypoint.Plugin { return plugin{} }

type plugin struct{}

func (plugin) Kind() entrypoint.Kind { return entrypoint.KindRPC }

// Consumers is one, the request queue, when r holds a method.
func (plugin) Consumers(r *entrypoint.Registry) int {
	if len(methodNames(r)) == 0 {
		return 0
	}
	return 1
}

// Serve builds the service's RPC server, with RPC_EXCHANGE,
// PARENT_CALLS_TRACKED and REDACT_UNEXPECTED_ERRORS; with metrics on, it
// counts the calls the server drops or cannot answer.
func (plugin) Serve(s *entrypoint.Service) (entrypoint.Server, error) {
	names := methodNames(s.Registry)
	if len(names) == 0 {
		return nil, nil
	}
	c := serverCounters{}
	if s.MeterProvider != nil {
		var err error
		if c, err = newServerCounters(s.MeterProvider); err != nil {
			return nil, err
		}
	}
	prefetch := 0
	if len(s.Prefetches) > 0 {
		prefetch = s.Prefetches[0]
	}
	methods := label.NewSet(0, names...)
	return newServer(s.Broker, s.Registry, serverConfig{
		Service: s.Name, Exchange: s.Settings.RPCExchange, Pool: s.Pool, Prefetch: prefetch,
		ParentCallsTracked: s.Settings.ParentCallsTracked, Logger: s.Logger, Interceptors: s.Interceptors,
		OnExpired: c.expiredCalls(s.Name, methods), OnDuplicate: c.duplicateCalls(s.Name, methods),
		OnNoReplyTo: c.noReplyToCalls(s.Name), RedactUnexpectedErrors: s.Settings.RedactUnexpectedErrors,
	}), nil
}

// methodNames are the names of the RPC methods in r, raw ones included.
func methodNames(r *entrypoint.Registry) []string {
	var names []string
	for _, m := range entrypoint.Of[*rpcMethod](r) {
		names = append(names, m.EntrypointName())
	}
	for _, m := range entrypoint.Of[*rawMethod](r) {
		names = append(names, m.EntrypointName())
	}
	return names
}

// serverCounters count what a server drops or cannot answer; nil counters
// (metrics off) count nothing.
type serverCounters struct {
	expired   metric.Int64Counter
	dupes     metric.Int64Counter
	noReplyTo metric.Int64Counter
}

func newServerCounters(mp metric.MeterProvider) (serverCounters, error) {
	meter := mp.Meter("github.com/hypha-go/hypha/rpc")
	var (
		c   serverCounters
		err error
	)
	c.expired, err = meter.Int64Counter("hypha.rpc.server.expired",
		metric.WithDescription("Calls dropped unstarted because their caller's deadline had passed."), metric.WithUnit("{call}"))
	if err != nil {
		return c, err
	}
	c.dupes, err = meter.Int64Counter("hypha.rpc.server.duplicates",
		metric.WithDescription("Copies of requests this instance had already answered, dropped unrun."), metric.WithUnit("{call}"))
	if err != nil {
		return c, err
	}
	c.noReplyTo, err = meter.Int64Counter("hypha.rpc.server.no_reply_to",
		metric.WithDescription("Requests that came without a reply_to: run, their outcome sent nowhere."), metric.WithUnit("{call}"))
	return c, err
}

// expiredCalls counts the calls a service dropped because their caller had
// given up (hypha.rpc.server.expired), by service and method: one of
// methods, the service's, or "_OTHER", since the name came from the wire.
func (c serverCounters) expiredCalls(service string, methods *label.Set) func(method string) {
	return func(method string) {
		if c.expired != nil {
			c.expired.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", label.Own(service)),
				attribute.String("method", methods.Of(method))))
		}
	}
}

// duplicateCalls counts the copies of requests a service instance had
// already answered (hypha.rpc.server.duplicates), by service and method (one
// of methods, else "_OTHER").
func (c serverCounters) duplicateCalls(service string, methods *label.Set) func(method string) {
	return func(method string) {
		if c.dupes != nil {
			c.dupes.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", label.Own(service)),
				attribute.String("method", methods.Of(method))))
		}
	}
}

// noReplyToCalls counts the requests a service ran without a reply_to
// (hypha.rpc.server.no_reply_to), by service and method.
func (c serverCounters) noReplyToCalls(service string) func(method string) {
	return func(method string) {
		if c.noReplyTo != nil {
			c.noReplyTo.Add(context.Background(), 1,
				metric.WithAttributes(attribute.String("service", service), attribute.String("method", method)))
		}
	}
}
