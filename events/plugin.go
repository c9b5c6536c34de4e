package events

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hypha-go/hypha/entrypoint"
)

// Plugin serves a service's event handlers, each on its own queue, the
// framework's built-in kind entrypoint.KindEvent. ics wrap every handler
// run, the first outermost, inside the plugin's tracing and metrics and
// outside the app's entrypoint.Interceptors.
func Plugin(ics ...HandlerInterceptor) entrypoint.Plugin {
	return &plugin{ics: ics}
}

type plugin struct{ ics []HandlerInterceptor }

func (*plugin) Kind() entrypoint.Kind { return entrypoint.KindEvent }

// Consumers is one queue per handler.
func (*plugin) Consumers(r *entrypoint.Registry) int { return len(entrypoint.Of[*Handler](r)) }

// Serve builds the service's event server, with EVENTS' keys and
// PARENT_CALLS_TRACKED, traced and counted when telemetry is on.
func (p *plugin) Serve(s *entrypoint.Service) (entrypoint.Server, error) {
	if len(entrypoint.Of[*Handler](s.Registry)) == 0 {
		return nil, nil
	}
	var ics []HandlerInterceptor
	if s.Tracing() {
		ics = append(ics, HandlerTracing(s.TracerProvider, s.Propagator))
	}
	var dead metric.Int64Counter
	if s.Metrics() {
		hm, err := HandlerMetrics(s.MeterProvider)
		if err != nil {
			return nil, err
		}
		ics = append(ics, hm)
		dead, err = s.MeterProvider.Meter(instrumentation).Int64Counter("hypha.events.dead_lettered",
			metric.WithDescription("Events sent to their dead-letter queue, by how."), metric.WithUnit("{event}"))
		if err != nil {
			return nil, err
		}
	}
	ics = append(append(ics, p.ics...), appInterceptors(s.Interceptors)...)
	ev := s.Settings.Events
	return NewServer(s.Broker, s.Registry, ServerConfig{
		Service: s.Name, Pool: s.Pool, MaxRetries: ev.MaxRetries, Prefetches: s.Prefetches,
		HandlerTimeout: ev.HandlerTimeout, RetryDelay: RetryDelay(ev.RetryDelay),
		ParentCallsTracked: s.Settings.ParentCallsTracked, Logger: s.Logger, Interceptors: ics,
		NamekoQueues: ev.NamekoQueues, OnDeadLetter: deadLetters(dead, s.Name),
	}), nil
}

// appInterceptors runs the app's cross-kind interceptors around every event
// handler run, as the innermost handler interceptor; none when there are none.
func appInterceptors(ics []entrypoint.Interceptor) []HandlerInterceptor {
	if len(ics) == 0 {
		return nil
	}
	return []HandlerInterceptor{func(ctx context.Context, ev *EventInfo, next Next) error {
		info := &entrypoint.Info{Kind: entrypoint.KindEvent, Service: ev.Service, Name: ev.Handler}
		return entrypoint.Intercept(ics, info, entrypoint.Next(next))(ctx)
	}}
}

// deadLetters counts the events a service's handlers dead-lettered
// (hypha.events.dead_lettered), by service, handler, event and how; nothing
// when dead is nil (metrics off).
func deadLetters(dead metric.Int64Counter, service string) func(handler, event, how string) {
	return func(handler, event, how string) {
		if dead != nil {
			dead.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", service),
				attribute.String("handler", handler), attribute.String("event", event), attribute.String("how", how)))
		}
	}
}
