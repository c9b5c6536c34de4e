package crosslang_test

import (
	"context"
	"encoding/json"
	"maps"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/telemetry"
)

func TestNamekoDispatcherReachesHypha(t *testing.T) {
	uri := testbroker.URI(t)
	type received struct {
		order evtOrder
		data  contextdata.Data
	}
	got := make(chan received, 10)
	hyphatest.Run(t, uri, evtServiceOption("go_listener", func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", "py_orders", "order_created", func(ctx context.Context, o evtOrder) error {
			got <- received{o, contextdata.From(ctx)}
			return nil
		})
	}))

	out := runStandalone(t, uri, "dispatch", "py_orders", "order_created", `{"id": 7, "item": "socks"}`)
	if strings.TrimSpace(out) != "DISPATCHED" {
		t.Fatalf("standalone.py dispatch printed %q, want DISPATCHED", out)
	}
	var r received
	select {
	case r = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the Hypha handler got no event within 20 s")
	}
	if r.order != (evtOrder{7, "socks"}) {
		t.Errorf("payload = %+v, want {ID:7 Item:socks}", r.order)
	}
	// nameko's standalone dispatcher sends no headers: the handler's worker
	// starts the call-id stack, and there is no other context data.
	stack := contextdata.CallIDStack(contextdata.WithData(context.Background(), r.data))
	if own := regexp.MustCompile(`^go_listener\.on_created\.` + uuidRE + `$`); len(stack) != 1 || !own.MatchString(stack[0]) {
		t.Errorf("call_id_stack = %q, want [go_listener.on_created.<uuid>]", stack)
	}
	for key := range r.data {
		if key != contextdata.KeyCallIDStack {
			t.Errorf("context data has %s = %#v; nameko's standalone dispatcher sent no headers", key, r.data[key])
		}
	}
	select {
	case extra := <-got:
		t.Errorf("the handler got a second event: %+v", extra)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestHyphaDispatchReachesNamekoHandlers(t *testing.T) {
	uri := testbroker.URI(t)
	svc := startNameko(t, uri, "event_service", "PyListener",
		"evt-hy_orders-order_created--py_listener.on_pool",
		"evt-hy_orders-order_created",
		"evt-hy_orders-order_created--py_listener.on_broadcast-*")

	d, err := hyphatest.Dispatcher(t, context.Background(), uri, events.DispatcherConfig{Source: "hy_orders"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := contextdata.With(contextdata.WithUserID(context.Background(), "u-7"), "tenant", "acme")
	payloads := []evtOrder{{1, "socks"}, {2, "shoes"}}
	for _, p := range payloads {
		if err := d.Dispatch(ctx, "order_created", p); err != nil {
			t.Fatalf("dispatch %+v: %v", p, err)
		}
	}

	handlers := []string{"on_pool", "on_singleton", "on_broadcast"}
	type event struct {
		Handler     string         `json:"handler"`
		Payload     evtOrder       `json:"payload"`
		Data        map[string]any `json:"data"`
		CallIDStack []string       `json:"call_id_stack"`
	}
	var evs []event
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := svc.lines("EVENT ")
		if len(lines) >= len(handlers)*len(payloads) || time.Now().After(deadline) {
			evs = nil
			for _, l := range lines {
				var ev event
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("nameko printed %q: %v", l, err)
				}
				evs = append(evs, ev)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let a duplicate show up, if one is coming.
	time.Sleep(300 * time.Millisecond)
	if n := len(svc.lines("EVENT ")); n != len(handlers)*len(payloads) {
		t.Fatalf("nameko's handlers ran %d times, want %d (each of %v once per event): %+v", n, len(handlers)*len(payloads), handlers, evs)
	}
	dispatchID := regexp.MustCompile(`^hy_orders\.dispatch\.` + uuidRE + `$`)
	for _, h := range handlers {
		var seen []evtOrder
		for _, ev := range evs {
			if ev.Handler != h {
				continue
			}
			seen = append(seen, ev.Payload)
			if ev.Data["user_id"] != "u-7" || ev.Data["tenant"] != "acme" {
				t.Errorf("%s: nameko's context data = %v, want user_id u-7 and tenant acme", h, ev.Data)
			}
			own := regexp.MustCompile(`^py_listener\.` + h + `\.` + uuidRE + `$`)
			if s := ev.CallIDStack; len(s) != 2 || !dispatchID.MatchString(s[0]) || !own.MatchString(s[1]) {
				t.Errorf("%s: call_id_stack = %q, want [hy_orders.dispatch.<uuid> py_listener.%s.<uuid>]", h, s, h)
			}
		}
		if len(seen) != len(payloads) || (seen[0] != payloads[0] && seen[0] != payloads[1]) || seen[0] == seen[1] {
			t.Errorf("%s got %+v, want %+v", h, seen, payloads)
		}
	}
}

func TestHyphaThroughNamekoToHyphaEvents(t *testing.T) {
	uri := testbroker.URI(t)
	// Both Hypha ends trace; the nameko service between them does not.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prop := propagation.TraceContext{}
	type received struct {
		order   evtOrder
		data    contextdata.Data
		headers map[string]any
	}
	got := make(chan received, 10)
	record := func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		if call.Kind == entrypoint.KindEvent && !call.Client {
			got <- received{data: contextdata.From(ctx), headers: maps.Clone(call.Headers)}
		}
		return next(ctx)
	}
	hyphatest.Run(t, uri, framework.Interceptors(record, telemetry.Tracing(tp, prop)),
		evtServiceOption("go_sink", func(r *entrypoint.Registry) {
			events.Handle(r, "on_forwarded", "py_relay", "order_forwarded", func(ctx context.Context, o evtOrder) error {
				got <- received{order: o}
				return nil
			})
		}))
	startNameko(t, uri, "relay_service", "PyRelay", "evt-hy_orders-order_relayed--py_relay.relay")

	d, err := hyphatest.Dispatcher(t, context.Background(), uri, events.DispatcherConfig{Source: "hy_orders",
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := contextdata.With(contextdata.WithUserID(context.Background(), "u-7"), "tenant", "acme")
	if err := d.Dispatch(ctx, "order_relayed", evtOrder{3, "hats"}); err != nil {
		t.Fatal(err)
	}
	var seen, handled received
	for i := range 2 {
		select {
		case r := <-got:
			if i == 0 {
				seen = r
			} else {
				handled = r
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the Hypha handler got no event through nameko within 30 s")
		}
	}
	if handled.order != (evtOrder{3, "hats"}) {
		t.Errorf("payload = %+v, want {ID:3 Item:hats}", handled.order)
	}
	if seen.data["user_id"] != "u-7" || seen.data["tenant"] != "acme" {
		t.Errorf("go_sink's context data = %v, want user_id u-7 and tenant acme", seen.data)
	}
	// nameko forwarded Hypha's trace headers prefixed: they are not context
	// data, but the trace goes on across the nameko hop.
	if _, ok := seen.headers["nameko.traceparent"]; !ok {
		t.Errorf("go_sink's headers = %v; want nameko.traceparent, forwarded by nameko", seen.headers)
	}
	for key := range seen.data {
		if key == "traceparent" || strings.HasPrefix(key, "x-hypha-") {
			t.Errorf("go_sink's context data has %s = %#v, a header nameko forwarded", key, seen.data[key])
		}
	}
	stack := contextdata.CallIDStack(contextdata.WithData(context.Background(), seen.data))
	relayID := regexp.MustCompile(`^py_relay\.relay\.` + uuidRE + `$`)
	ownID := regexp.MustCompile(`^go_sink\.on_forwarded\.` + uuidRE + `$`)
	if len(stack) != 3 || !regexp.MustCompile(`^hy_orders\.dispatch\.`+uuidRE+`$`).MatchString(stack[0]) ||
		!relayID.MatchString(stack[1]) || !ownID.MatchString(stack[2]) {
		t.Errorf("go_sink's call_id_stack = %q, want [hy_orders.dispatch.<uuid> py_relay.relay.<uuid> go_sink.on_forwarded.<uuid>]", stack)
	}
	tp.ForceFlush(context.Background())
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
		t.Fatalf("spans %v; want a producer span and a consumer span", spanNames(rec.Ended()))
	}
	if consumer.Parent().SpanID() != producer.SpanContext().SpanID() || consumer.Parent().TraceID() != producer.SpanContext().TraceID() {
		t.Errorf("go_sink's span has parent %s/%s, want the dispatch span %s/%s: the trace broke at the nameko hop",
			consumer.Parent().TraceID(), consumer.Parent().SpanID(), producer.SpanContext().TraceID(), producer.SpanContext().SpanID())
	}
}
