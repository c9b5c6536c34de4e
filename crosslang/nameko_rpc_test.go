package crosslang_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
)

func TestHyphaCallsRealNameko(t *testing.T) {
	uri := testbroker.URI(t)
	startNameko(t, uri, "rpc_service", "PyService", "rpc-py_service")

	c, err := hyphatest.Client(t, context.Background(), uri, rpc.Config{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	py := c.Proxy("py_service")
	ctx := context.Background()

	value := map[string]any{"n": 1.5, "s": "x", "l": []any{true, nil, "y"}}
	for name, in := range map[string]any{
		"kwargs":     map[string]any{"value": value},
		"positional": rpc.Args(value),
	} {
		var got any
		if err := py.Call(ctx, "echo", in, &got); err != nil {
			t.Errorf("echo (%s): %v", name, err)
		} else if !reflect.DeepEqual(got, value) {
			t.Errorf("echo (%s) = %#v, want %#v", name, got, value)
		}
	}
	if got, err := rpc.Call[string](ctx, py, "greet", rpc.Args("ann")); err != nil || got != "hello, ann" {
		t.Errorf("greet(ann) = %q, %v; want \"hello, ann\"", got, err)
	}
	if got, err := rpc.Call[string](ctx, py, "greet", map[string]any{"name": "bo", "greeting": "hi"}); err != nil || got != "hi, bo" {
		t.Errorf("greet(name=bo, greeting=hi) = %q, %v; want \"hi, bo\"", got, err)
	}

	_, err = rpc.Call[any](ctx, py, "fail", rpc.Args("bad"))
	var re *rpc.RemoteError
	if !errors.As(err, &re) {
		t.Errorf("fail(bad): %v (%T), want *rpc.RemoteError", err, err)
	} else if want := (&rpc.RemoteError{ExcType: "ValueError", ExcPath: "builtins.ValueError", ExcArgs: []any{"bad"}, Value: "bad"}); !reflect.DeepEqual(re, want) {
		t.Errorf("fail(bad) error = %#v, want %#v", re, want)
	}
	if _, err := rpc.Call[any](ctx, py, "no_such_method", nil); !errors.Is(err, rpc.ErrMethodNotFound) {
		t.Errorf("no_such_method: %v, want rpc.ErrMethodNotFound", err)
	}
	// nameko checks the signature before the worker runs.
	if _, err := rpc.Call[any](ctx, py, "greet", nil); !errors.As(err, &re) || re.ExcType != "IncorrectSignature" {
		t.Errorf("greet(): %v, want nameko's IncorrectSignature", err)
	}

	hctx := contextdata.WithUserID(ctx, "u-7")
	hctx = contextdata.With(hctx, "tenant", "acme")
	got, err := rpc.Call[struct {
		Data        map[string]any `json:"data"`
		CallIDStack []string       `json:"call_id_stack"`
	}](hctx, py, "context", nil)
	if err != nil {
		t.Fatalf("context(): %v", err)
	}
	if got.Data["user_id"] != "u-7" || got.Data["tenant"] != "acme" {
		t.Errorf("nameko's worker context data = %v; want user_id u-7 and tenant acme", got.Data)
	}
	// Hypha's client names its calls as nameko 2.14's standalone proxy does.
	if len(got.CallIDStack) != 2 || !namekoProxyCallID.MatchString(got.CallIDStack[0]) ||
		!strings.HasPrefix(got.CallIDStack[1], "py_service.context.") {
		t.Errorf("nameko's call_id_stack = %q; want [standalone_rpc_proxy.call.<uuid> py_service.context.<uuid>]", got.CallIDStack)
	}
}

// whoami is a Hypha service that returns the context data of each call.
type whoami struct{}

func (whoami) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "context", func(ctx context.Context, _ struct{}) (contextdata.Data, error) {
		return contextdata.From(ctx), nil
	})
}

func TestNamekoProxyCallsHypha(t *testing.T) {
	uri := testbroker.URI(t)
	hyphatest.Run(t, uri,
		framework.Service(calculator.Name, calculator.New),
		framework.Service("whoami", func() whoami { return whoami{} }),
		framework.Service("uploads", func() uploads { return uploads{} }),
	)

	calls := `[["calculator", "add", [1, 2], {}],
		["calculator", "add", [], {"a": 1.5, "b": 2}],
		["calculator", "divide", [1, 0], {}],
		["calculator", "nope", [], {}],
		["calculator", "add", [1], {}],
		["whoami", "context", [], {}],
		["nobody", "anything", [], {}],
		["uploads", "store", [], {"name": "a.txt", "size": 3}],
		["uploads", "refuse", [], {}]]`
	out := runStandalone(t, uri, "rpc", calls, `{"user_id": "u-42", "custom_key": "custom-value"}`)
	type result struct {
		Result any               `json:"result"`
		Error  map[string]string `json:"error"`
	}
	var got []result
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("standalone.py printed %q: %v", line, err)
		}
		got = append(got, r)
	}
	if len(got) != 9 {
		t.Fatalf("standalone.py printed %d results, want 9:\n%s", len(got), out)
	}
	if got[0].Result != 3.0 || got[0].Error != nil {
		t.Errorf("calculator.add(1, 2) = %+v, want 3", got[0])
	}
	if got[1].Result != 3.5 || got[1].Error != nil {
		t.Errorf("calculator.add(a=1.5, b=2) = %+v, want 3.5", got[1])
	}
	for i, want := range []map[string]string{
		2: {"raised": "RemoteError", "exc_type": "ZeroDivisionError", "value": "division by zero"},
		// nameko raises the exceptions it registers as themselves.
		3: {"raised": "MethodNotFound", "value": "nope"},
		6: {"raised": "UnknownService", "value": "Unknown service `" + "nobody`"},
		// Raw methods answer as any other.
		8: {"raised": "RemoteError", "exc_type": "QuotaExceeded", "value": "no space left"},
	} {
		if want != nil && !reflect.DeepEqual(got[i].Error, want) {
			t.Errorf("call %d: nameko raised %v, want %v", i, got[i].Error, want)
		}
	}
	if got[4].Error["raised"] != "IncorrectSignature" {
		t.Errorf("calculator.add(1): nameko raised %v, want IncorrectSignature", got[4].Error)
	}
	if want := map[string]any{"stored": "a.txt", "size": 3.0}; !reflect.DeepEqual(got[7].Result, want) || got[7].Error != nil {
		t.Errorf("uploads.store(name=a.txt, size=3), a raw method: %+v, want %v", got[7], want)
	}
	data, _ := got[5].Result.(map[string]any)
	if data["user_id"] != "u-42" || data["custom_key"] != "custom-value" {
		t.Errorf("whoami.context() = %v; want user_id u-42 and custom_key custom-value", got[5].Result)
	}
	// nameko 2.14's standalone proxy names its calls standalone_rpc_proxy.call.<uuid>.
	stack := stringsOf(data[contextdata.KeyCallIDStack])
	if len(stack) != 2 || !namekoProxyCallID.MatchString(stack[0]) || !strings.HasPrefix(stack[1], "whoami.context.") {
		t.Errorf("whoami.context() call_id_stack = %q, want [standalone_rpc_proxy.call.<uuid> whoami.context.<uuid>]", stack)
	}
}

var namekoProxyCallID = regexp.MustCompile(`^standalone_rpc_proxy\.call\.` + uuidRE + `$`)

func TestHyphaThroughNamekoToHypha(t *testing.T) {
	uri := testbroker.URI(t)
	var mu sync.Mutex
	var seen []seenCall
	record := func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		if call.Kind == entrypoint.KindRPC && !call.Client {
			mu.Lock()
			seen = append(seen, seenCall{call.Service, call.Name, contextdata.From(ctx), maps.Clone(call.Headers)})
			mu.Unlock()
		}
		return next(ctx)
	}
	// Both Hypha ends trace; the nameko service between them does not.
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	prop := propagation.TraceContext{}
	hyphatest.Run(t, uri, framework.Interceptors(record, telemetry.Tracing(tp, prop)),
		framework.Service(calculator.Name, calculator.New))
	startNameko(t, uri, "rpc_service", "PyService", "rpc-py_service")

	c, err := hyphatest.Client(t, context.Background(), uri, rpc.Config{Timeout: 20 * time.Second,
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctx = contextdata.With(contextdata.WithUserID(ctx, "u-7"), "tenant", "acme")
	got, err := rpc.Call[float64](ctx, c.Proxy("py_service"), "relay", map[string]any{"a": 2, "b": 3})
	if err != nil || got != 6 {
		t.Fatalf("py_service.relay(a=2, b=3) = %v, %v; want 6", got, err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].service != calculator.Name || seen[0].method != "multiply" {
		t.Fatalf("Hypha saw %+v, want one call of calculator.multiply", seen)
	}
	down := seen[0]
	if down.data["user_id"] != "u-7" || down.data["tenant"] != "acme" {
		t.Errorf("calculator's context data = %v, want user_id u-7 and tenant acme", down.data)
	}
	// nameko keeps every header it receives as context data and forwards all
	// of it prefixed: Hypha's deadline comes back as nameko.x-hypha-deadline,
	// which is not context data, nor the deadline of this call.
	if _, ok := down.headers["nameko.x-hypha-deadline"]; !ok {
		t.Errorf("calculator's headers = %v; want nameko.x-hypha-deadline, forwarded by nameko", down.headers)
	}
	if _, ok := down.headers["nameko.traceparent"]; !ok {
		t.Errorf("calculator's headers = %v; want nameko.traceparent, forwarded by nameko", down.headers)
	}
	for key := range down.data {
		if strings.HasPrefix(key, "x-hypha-") || key == "traceparent" {
			t.Errorf("calculator's context data has %s = %#v, a header nameko forwarded", key, down.data[key])
		}
	}
	// The trace goes on across the nameko hop: calculator's span is a child
	// of the client's span of the call to py_service.relay.
	tp.ForceFlush(context.Background())
	var client, server sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch {
		case s.Name() == "py_service/relay" && s.SpanKind() == trace.SpanKindClient:
			client = s
		case s.Name() == calculator.Name+"/multiply" && s.SpanKind() == trace.SpanKindServer:
			server = s
		}
	}
	if client == nil || server == nil {
		t.Fatalf("spans %v; want a client span py_service/relay and a server span %s/multiply", spanNames(rec.Ended()), calculator.Name)
	}
	if server.Parent().TraceID() != client.SpanContext().TraceID() || server.Parent().SpanID() != client.SpanContext().SpanID() {
		t.Errorf("calculator's span has parent %s/%s, want the client span %s/%s: the trace broke at the nameko hop",
			server.Parent().TraceID(), server.Parent().SpanID(), client.SpanContext().TraceID(), client.SpanContext().SpanID())
	}
	stack := contextdata.CallIDStack(contextdata.WithData(context.Background(), down.data))
	relayID := regexp.MustCompile(`^py_service\.relay\.` + uuidRE + `$`)
	if len(stack) != 3 || !namekoProxyCallID.MatchString(stack[0]) || !relayID.MatchString(stack[1]) ||
		!calcMultiplyID.MatchString(stack[2]) {
		t.Errorf("calculator's call_id_stack = %q, want [standalone_rpc_proxy.call.<uuid> py_service.relay.<uuid> calculator.multiply.<uuid>]", stack)
	}
}

// spanNames lists the names of spans, for a failure message.
func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name() + " (" + s.SpanKind().String() + ")"
	}
	return names
}
