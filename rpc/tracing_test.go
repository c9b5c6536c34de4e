package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
)

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestTracingAcrossCalls(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prop := propagation.TraceContext{}

	// "traced_front" calls "traced_back" with the trace carried in headers.
	back := dialIntercepted(t, telemetry.Tracing(tp, prop))
	serveIntercepted(t, "traced_back", mathService(nil), telemetry.Tracing(tp, prop))
	serveIntercepted(t, "traced_front", func(r *entrypoint.Registry) {
		rpc.Handle(r, "relay", func(ctx context.Context, in pair) (float64, error) {
			return rpc.Call[float64](ctx, back.Proxy("traced_back"), "add", in)
		})
	}, telemetry.Tracing(tp, prop))
	c := dialIntercepted(t, telemetry.Tracing(tp, prop))
	ctx := context.Background()

	if got, err := rpc.Call[float64](ctx, c.Proxy("traced_front"), "relay", pair{1, 2}); err != nil || got != 3 {
		t.Fatalf("relay = %v, %v", got, err)
	}
	_, expectedErr := rpc.Call[int](ctx, c.Proxy("traced_back"), "sqrt_floor", map[string]any{"x": -1})
	failErr := c.Proxy("traced_back").Call(ctx, "fail", nil, nil)
	missingErr := c.Proxy("traced_nobody").Call(ctx, "x", nil, nil)
	unknownErr := c.Proxy("traced_back").Call(ctx, "nope", nil, nil)
	if !errors.Is(expectedErr, errNegative) || failErr == nil || !errors.Is(missingErr, rpc.ErrServiceNotFound) ||
		!errors.Is(unknownErr, rpc.ErrMethodNotFound) {
		t.Fatalf("errors: %v / %v / %v / %v", expectedErr, failErr, missingErr, unknownErr)
	}
	tp.ForceFlush(ctx)

	spans := rec.Ended()
	find := func(name string, kind trace.SpanKind) sdktrace.ReadOnlySpan {
		t.Helper()
		for _, s := range spans {
			if s.Name() == name && s.SpanKind() == kind {
				return s
			}
		}
		t.Fatalf("no %v span %q among %d spans", kind, name, len(spans))
		return nil
	}
	relayClient := find("traced_front/relay", trace.SpanKindClient)
	relayServer := find("traced_front/relay", trace.SpanKindServer)
	addClient := find("traced_back/add", trace.SpanKindClient)
	addServer := find("traced_back/add", trace.SpanKindServer)
	trace0 := relayClient.SpanContext().TraceID()
	for _, s := range []sdktrace.ReadOnlySpan{relayServer, addClient, addServer} {
		if s.SpanContext().TraceID() != trace0 {
			t.Errorf("%s %v is in another trace", s.Name(), s.SpanKind())
		}
	}
	chain := [][2]sdktrace.ReadOnlySpan{{relayClient, relayServer}, {relayServer, addClient}, {addClient, addServer}}
	for _, pc := range chain {
		if pc[1].Parent().SpanID() != pc[0].SpanContext().SpanID() {
			t.Errorf("%s %v is not the child of %s %v", pc[1].Name(), pc[1].SpanKind(), pc[0].Name(), pc[0].SpanKind())
		}
	}
	for key, want := range map[string]string{
		"rpc.system": "nameko", "rpc.service": "traced_back", "rpc.method": "add",
		"messaging.system": "rabbitmq", "messaging.destination.name": "nameko-rpc",
		"messaging.rabbitmq.destination.routing_key": "traced_back.add",
	} {
		if got := attr(addServer, key); got != want {
			t.Errorf("server span %s = %q, want %q", key, got, want)
		}
	}
	if attr(addClient, "messaging.message.conversation_id") == "" || attr(addClient, "messaging.message.body.size") == "" {
		t.Errorf("client span lacks correlation id or body size: %v", addClient.Attributes())
	}

	expectedServer := find("traced_back/sqrt_floor", trace.SpanKindServer)
	expectedClient := find("traced_back/sqrt_floor", trace.SpanKindClient)
	for _, s := range []sdktrace.ReadOnlySpan{expectedServer, expectedClient} {
		if s.Status().Code == codes.Error || len(s.Events()) != 1 || attrOfEvent(s.Events()[0], "exception.type") != "NegativeError" {
			t.Errorf("expected error on %v span: status %v, events %v", s.SpanKind(), s.Status(), s.Events())
		}
	}
	for _, s := range []sdktrace.ReadOnlySpan{
		find("traced_back/fail", trace.SpanKindServer),
		find("traced_back/fail", trace.SpanKindClient),
		find("traced_nobody/x", trace.SpanKindClient),
		find("traced_back/_OTHER", trace.SpanKindServer),
	} {
		if s.Status().Code != codes.Error {
			t.Errorf("%s %v: status %v, want Error", s.Name(), s.SpanKind(), s.Status())
		}
		if len(s.Events()) != 1 || s.Events()[0].Name != "exception" {
			t.Errorf("%s %v: events %v, want one exception", s.Name(), s.SpanKind(), s.Events())
		}
	}
	if s := find("traced_back/_OTHER", trace.SpanKindServer); attr(s, "rpc.method") != "_OTHER" ||
		attr(s, "rpc.method_original") != "nope" {
		t.Errorf("unknown method's server span: rpc.method %q, rpc.method_original %q; want _OTHER and nope",
			attr(s, "rpc.method"), attr(s, "rpc.method_original"))
	}
}

func attrOfEvent(e sdktrace.Event, key string) string {
	for _, kv := range e.Attributes {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

func TestTimeoutIsOnTheClientSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	serve(t, "traced_slow", 2, mathService(nil))
	c := dialIntercepted(t, telemetry.Tracing(tp, propagation.TraceContext{}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Proxy("traced_slow").Call(ctx, "sleep", map[string]any{"ms": 500}, nil); !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Status().Code != codes.Error || len(spans[0].Events()) != 1 ||
		attrOfEvent(spans[0].Events()[0], "exception.type") != "Timeout" {
		t.Fatalf("spans = %v", spans)
	}
	n := 0
	for _, kv := range spans[0].Events()[0].Attributes {
		if kv.Key == "exception.type" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("exception event carries exception.type %d times: %v", n, spans[0].Events()[0].Attributes)
	}
}
