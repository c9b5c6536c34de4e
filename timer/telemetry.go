package timer

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
)

const instrumentation = "github.com/hypha-go/hypha/timer"

// Tracing returns an interceptor that records a span per tick, "tick
// <service>.<timer>", the root of the trace of the calls the tick makes; a
// failed tick sets its status to Error.
func Tracing(tp trace.TracerProvider) entrypoint.Interceptor {
	tracer := tp.Tracer(instrumentation)
	return func(ctx context.Context, info *entrypoint.Info, next entrypoint.Next) error {
		ctx, span := tracer.Start(ctx, "tick "+info.Service+"."+info.Name, trace.WithNewRoot(),
			trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attribute.String("hypha.timer", info.Name)))
		defer span.End()
		err := next(ctx)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

// Metrics returns an interceptor that counts ticks (hypha.timer.ticks) by
// service, timer and outcome ("ok" or "error") and records how long they took
// (hypha.timer.duration, seconds, in entrypoint.DurationBuckets).
func Metrics(mp metric.MeterProvider) (entrypoint.Interceptor, error) {
	meter := mp.Meter(instrumentation)
	ticks, err := meter.Int64Counter("hypha.timer.ticks",
		metric.WithDescription("Timer ticks run, by outcome."), metric.WithUnit("{tick}"))
	if err != nil {
		return nil, err
	}
	duration, err := meter.Float64Histogram("hypha.timer.duration",
		metric.WithDescription("How long timer ticks took."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(entrypoint.DurationBuckets()...))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, info *entrypoint.Info, next entrypoint.Next) error {
		start := time.Now()
		err := next(ctx)
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		attrs := metric.WithAttributes(attribute.String("service", label.Own(info.Service)),
			attribute.String("timer", label.Own(info.Name)),
			attribute.String("outcome", outcome))
		ticks.Add(ctx, 1, attrs)
		duration.Record(ctx, time.Since(start).Seconds(), attrs)
		return err
	}, nil
}
