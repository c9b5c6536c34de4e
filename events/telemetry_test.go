package events_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/telemetry"
	"github.com/hypha-go/hypha/transport/dial"
)

func TestEventTracingAndMetrics(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	consumed := consumerEnded{make(chan struct{}, 1)}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSpanProcessor(consumed))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	prop := propagation.TraceContext{}
	metrics, err := telemetry.Metrics(mp)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := entrypoint.NewRegistry("traced_mailer")
	events.Handle(r, "on_created", "traced_orders", "order_created", func(context.Context, order) error { return nil })
	srv := events.NewServer(b, r, events.ServerConfig{Service: "traced_mailer", ParentCallsTracked: 10,
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, prop), metrics}})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)

	d := events.NewDispatcher(b, events.DispatcherConfig{Source: "traced_orders",
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}})
	if err := d.Dispatch(ctx, "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	// The consumer span ends after the handler returns and after the
	// metrics interceptor, inside the tracing one, has counted it.
	select {
	case <-consumed.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event was never handled: no consumer span ended")
	}

	var producer, consumer sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.SpanKind() {
		case trace.SpanKindProducer:
			producer = s
		case trace.SpanKindConsumer:
			consumer = s
		}
	}
	if producer == nil || consumer == nil {
		t.Fatalf("spans: %v", rec.Ended())
	}
	if consumer.SpanContext().TraceID() != producer.SpanContext().TraceID() || consumer.Parent().SpanID() != producer.SpanContext().SpanID() {
		t.Errorf("the consumer span is not the producer span's child")
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if sum, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == "hypha.events.handled" {
				for _, dp := range sum.DataPoints {
					found = found || dp.Value == 1
				}
			}
		}
	}
	if !found {
		t.Errorf("hypha.events.handled did not count the event: %+v", rm)
	}
}

// consumerEnded signals on ended each time a consumer span ends.
type consumerEnded struct{ ended chan struct{} }

func (c consumerEnded) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (c consumerEnded) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanKind() == trace.SpanKindConsumer {
		select {
		case c.ended <- struct{}{}:
		default:
		}
	}
}

func (c consumerEnded) Shutdown(context.Context) error   { return nil }
func (c consumerEnded) ForceFlush(context.Context) error { return nil }
