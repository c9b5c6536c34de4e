package telemetry_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/telemetry"
	"github.com/hypha-go/hypha/timer"
)

// HTTP routes are otelhttp's: the interceptors let them through with no
// span and no measure of their own, so that a request has one span.
func TestHTTPIsLeftToOtelhttp(t *testing.T) {
	tp, rec := recordSpans(t)
	mp, reader := readMetrics(t)
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
	tp, rec := recordSpans(t)
	mp, reader := readMetrics(t)
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

// A kind a plug-in adds is traced too: a span per run, named after the
// kind, that continues the trace in its message's headers; an expected
// error is an event, any other the span's status.
func TestPluginKindIsTraced(t *testing.T) {
	tp, rec := recordSpans(t)
	prop := propagation.TraceContext{}
	tracing := telemetry.Tracing(tp, prop)
	errExpected, errOther := errors.New("no such order"), errors.New("disk full")

	// The sending side puts its span's context in the headers it sends.
	sent := map[string]any{}
	client := &entrypoint.Call{Kind: "webhook", Client: true, Service: "shop", Name: "notify", Headers: sent}
	if err := tracing(context.Background(), client, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, ok := sent["traceparent"]; !ok {
		t.Fatalf("headers sent %v: want a traceparent", sent)
	}
	for _, run := range []error{nil, errExpected, errOther} {
		call := &entrypoint.Call{Kind: "webhook", Service: "shop", Name: "notify", Headers: sent,
			Expected: func(err error) bool { return errors.Is(err, errExpected) }}
		if err := tracing(context.Background(), call, func(context.Context) error { return run }); err != run {
			t.Fatalf("the run's error %v came back as %v", run, err)
		}
	}
	spans := rec.Ended()
	if len(spans) != 4 {
		t.Fatalf("%d spans, want 4", len(spans))
	}
	if spans[0].Name() != "webhook shop.notify" || spans[0].SpanKind() != trace.SpanKindClient {
		t.Errorf("client span %q (%v), want \"webhook shop.notify\" (client)", spans[0].Name(), spans[0].SpanKind())
	}
	for i, s := range spans[1:] {
		if s.SpanKind() != trace.SpanKindServer || s.Parent().SpanID() != spans[0].SpanContext().SpanID() {
			t.Errorf("run %d: span kind %v, parent %s; want a server span, child of the sender's", i, s.SpanKind(), s.Parent().SpanID())
		}
	}
	if spans[2].Status().Code != codes.Unset || len(spans[2].Events()) != 1 {
		t.Errorf("an expected error: status %v, %d events; want unset and one event", spans[2].Status().Code, len(spans[2].Events()))
	}
	if spans[3].Status().Code != codes.Error || spans[1].Status().Code != codes.Unset {
		t.Errorf("statuses %v (ok run), %v (other error); want unset, error", spans[1].Status().Code, spans[3].Status().Code)
	}
}
