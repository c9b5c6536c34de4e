package events

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hypha-go/hypha/entrypoint"
)

// Plugin serves a service's event handlers, each on its own queue, the
// framework's built-in kind entrypoint.KindEvent. The service's interceptors
// (telemetry's, then the app's) wrap every handler run.
//
// A program that handles events without package framework calls
// Plugin().Serve(&entrypoint.Service{...}) and then the server's Start.
func Plugin() entrypoint.Plugin { return plugin{} }

type plugin struct{}

func (plugin) Kind() entrypoint.Kind { return entrypoint.KindEvent }

// Consumers is one queue per handler.
func (plugin) Consumers(r *entrypoint.Registry) int { return len(entrypoint.Of[*eventHandler](r)) }

// Serve builds the service's event server, with EVENTS' keys and
// PARENT_CALLS_TRACKED; with metrics on, it counts dead-lettered events.
func (plugin) Serve(s *entrypoint.Service) (entrypoint.Server, error) {
	if len(entrypoint.Of[*eventHandler](s.Registry)) == 0 {
		return nil, nil
	}
	var dead metric.Int64Counter
	if s.MeterProvider != nil {
		var err error
		dead, err = s.MeterProvider.Meter("github.com/hypha-go/hypha/events").Int64Counter("hypha.events.dead_lettered",
			metric.WithDescription("Events sent to their dead-letter queue, by how."), metric.WithUnit("{event}"))
		if err != nil {
			return nil, err
		}
	}
	ev := s.Settings.Events
	return newServer(s.Broker, s.Registry, serverConfig{
		Service: s.Name, Pool: s.Pool, MaxRetries: ev.MaxRetries, Prefetches: s.Prefetches,
		HandlerTimeout: ev.HandlerTimeout, RetryDelay: retryDelay(ev.RetryDelay),
		ParentCallsTracked: s.Settings.ParentCallsTracked, Logger: s.Logger, Interceptors: s.Interceptors,
		NamekoQueues: ev.NamekoQueues, OnDeadLetter: deadLetters(dead, s.Name),
	}), nil
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
