package events

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
	"github.com/hypha-go/hypha/transport"
)

const instrumentation = "github.com/hypha-go/hypha/events"

// DispatchTracing returns a dispatch interceptor that records a producer span
// per event and sends its context in the event's headers (written by prop),
// so that the handlers' spans join the dispatcher's trace.
func DispatchTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) DispatchInterceptor {
	tracer := tp.Tracer(instrumentation)
	return func(ctx context.Context, ev *EventInfo, next Next) error {
		ctx, span := tracer.Start(ctx, "publish "+ev.Source+"."+ev.EventType, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(append(eventAttributes(ev), attribute.String("messaging.operation.type", "publish"))...))
		defer span.End()
		prop.Inject(ctx, transport.HeaderCarrier(ev.Headers))
		err := next(ctx)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

// HandlerTracing returns a handler interceptor that continues the
// dispatcher's trace (read from the headers by prop, or forwarded by a nameko
// service in between: see transport.ReceivedTrace) with a consumer span per
// handler run; a failed run sets the span's status to Error.
func HandlerTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) HandlerInterceptor {
	tracer := tp.Tracer(instrumentation)
	return func(ctx context.Context, ev *EventInfo, next Next) error {
		ctx = prop.Extract(ctx, transport.ReceivedTrace(ev.Headers))
		attrs := append(eventAttributes(ev),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.consumer.group.name", ev.Queue),
			attribute.Int("hypha.event.attempt", ev.Attempt))
		ctx, span := tracer.Start(ctx, "process "+ev.Source+"."+ev.EventType, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attrs...))
		defer span.End()
		err := next(ctx)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

// HandlerMetrics returns a handler interceptor that counts handler runs
// (hypha.events.handled) by service, handler, event and outcome ("ok", "timeout" or
// "error"), and records how long they took (hypha.events.duration, seconds,
// in entrypoint.DurationBuckets).
func HandlerMetrics(mp metric.MeterProvider) (HandlerInterceptor, error) {
	meter := mp.Meter(instrumentation)
	handled, err := meter.Int64Counter("hypha.events.handled",
		metric.WithDescription("Event handler runs, by outcome."), metric.WithUnit("{event}"))
	if err != nil {
		return nil, err
	}
	duration, err := meter.Float64Histogram("hypha.events.duration",
		metric.WithDescription("How long event handler runs took."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(entrypoint.DurationBuckets()...))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, ev *EventInfo, next Next) error {
		start := time.Now()
		err := next(ctx)
		outcome := "ok"
		switch {
		case err != nil && ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)):
			outcome = "timeout"
		case err != nil:
			outcome = "error"
		}
		// Every label is the handler's registration, never the message's:
		// the source and event type are those it subscribed to.
		attrs := metric.WithAttributes(attribute.String("service", label.Own(ev.Service)),
			attribute.String("handler", label.Own(ev.Handler)),
			attribute.String("event", label.Own(ev.Source+"."+ev.EventType)), attribute.String("outcome", outcome))
		handled.Add(ctx, 1, attrs)
		duration.Record(ctx, time.Since(start).Seconds(), attrs)
		return err
	}, nil
}

func eventAttributes(ev *EventInfo) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "rabbitmq"),
		attribute.String("messaging.destination.name", ev.Exchange),
		attribute.String("messaging.rabbitmq.destination.routing_key", ev.RoutingKey),
		attribute.String("messaging.message.id", ev.MessageID),
		attribute.Int("messaging.message.body.size", ev.BodySize),
	}
}
