package telemetry_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/telemetry"
	"github.com/hypha-go/hypha/timer"
)

// HTTP routes are otelhttp's: the interceptors let them through with no
// span and no measure of their own, so that a request has one span.
func TestHTTPIsLeftToOtelhttp(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	metrics, err := telemetry.Metrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	call := &entrypoint.Call{Kind: entrypoint.KindHTTP, Service: "gateway", Name: "GET /users/{id}",
		Spec: httptest.NewRequest("GET", "/users/7", nil)}
	ran := 0
	next := func(ctx context.Context) error {
		ran++
		if trace.SpanContextFromContext(ctx).IsValid() {
			t.Error("the route runs in a span of the interceptor's")
		}
		return errors.New("failed")
	}
	ics := []entrypoint.Interceptor{telemetry.Tracing(tp, propagation.TraceContext{}), metrics}
	if err := entrypoint.Intercept(ics, call, next)(context.Background()); err == nil || ran != 1 {
		t.Fatalf("err = %v, next ran %d times; want its error, once", err, ran)
	}
	if spans := rec.Ended(); len(spans) != 0 {
		t.Errorf("%d spans, want none: %v", len(spans), spans)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			t.Errorf("metric %s recorded for an HTTP request", m.Name)
		}
	}
}

// A tick is the root span "tick <service>.<timer>", and is counted.
func TestTimerTick(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	metrics, err := telemetry.Metrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	r := entrypoint.NewRegistry("reports")
	timer.Handle(r, "digest", time.Hour, func(context.Context) error { return nil })
	tm := entrypoint.Of[*timer.Timer](r)[0]
	call := &entrypoint.Call{Kind: entrypoint.KindTimer, Service: "reports", Name: "digest", Spec: tm}
	ics := []entrypoint.Interceptor{telemetry.Tracing(tp, propagation.TraceContext{}), metrics}
	_ = entrypoint.Intercept(ics, call, func(context.Context) error { return errors.New("no mail server") })(context.Background())
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "tick reports.digest" || spans[0].SpanKind() != trace.SpanKindInternal ||
		spans[0].Status().Code != codes.Error || spans[0].InstrumentationScope().Name != "github.com/hypha-go/hypha/timer" {
		t.Fatalf("spans = %v", spans)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "hypha.timer.ticks" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				outcome, _ := dp.Attributes.Value("outcome")
				timerName, _ := dp.Attributes.Value("timer")
				found = found || outcome.AsString() == "error" && timerName.AsString() == "digest" && dp.Value == 1
			}
		}
	}
	if !found {
		t.Errorf("no failed tick of digest counted: %v", rm)
	}
}
