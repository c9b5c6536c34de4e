// Package e2e_test checks, against a real Jaeger built from source, that the
// traces of calls between Hypha services arrive as a user would look at them.
package e2e_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/jaegertest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

// flaky is a service whose handler fails unexpectedly.
type flaky struct{}

func (flaky) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "fail", func(context.Context, struct{}) (string, error) {
		return "", errors.New("the disk is on fire")
	})
}

// runApp starts services exporting traces over OTLP until the test ends.
func runApp(t *testing.T, tracing map[string]any, services ...framework.Option) *framework.App {
	t.Helper()
	opts := append([]framework.Option{
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "TRACING": tracing}),
		framework.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))),
	}, services...)
	app, err := framework.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app
}

func TestTracesInJaeger(t *testing.T) {
	j := jaegertest.Start(t)
	ctx := context.Background()
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=e2e,service.name=not-this")
	app := runApp(t, map[string]any{"EXPORTER": "otlp", "ENDPOINT": j.OTLPHTTPEndpoint(), "PROTOCOL": "http/protobuf"},
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
		framework.Service("flaky", func() flaky { return flaky{} }),
	)

	// The caller traces too, as its own service, so the trace starts with it.
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(j.OTLPHTTPEndpoint()+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	res, _ := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", "e2e_caller")))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	client, err := hyphatest.Client(t, ctx, testbroker.URI(t), rpc.Config{Timeout: 10 * time.Second,
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, propagation.TraceContext{})}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.Call[users.Score](ctx, client.Proxy(users.Name), "calculate_user_score",
		map[string]any{"user_id": 7, "base_score": 10, "multiplier": 3}); err != nil {
		t.Fatal(err)
	}
	if err := client.Proxy("flaky").Call(ctx, "fail", nil, nil); err == nil {
		t.Fatal("flaky.fail succeeded")
	}
	client.Close()
	// Stopping flushes every service's spans.
	if err := app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	traces, err := j.WaitFor(wait, "calculator", func(trs []jaegertest.Trace) bool { return len(trs) > 0 && len(trs[0].Spans) >= 4 })
	if err != nil {
		t.Fatalf("calculator's trace never reached Jaeger: %v", err)
	}
	tr := traces[0]
	t.Logf("trace in Jaeger:\n%s", tr)
	chain := []struct{ service, op, kind string }{
		{"e2e_caller", "user_service/calculate_user_score", "client"},
		{users.Name, "user_service/calculate_user_score", "server"},
		{users.Name, "calculator/multiply", "client"},
		{calculator.Name, "calculator/multiply", "server"},
	}
	var parent jaegertest.Span
	for i, want := range chain {
		s, ok := spanOf(tr, want.service, want.op, want.kind)
		if !ok {
			t.Fatalf("no %s span %q of %s in the trace", want.kind, want.op, want.service)
		}
		if i > 0 && s.ParentID() != parent.SpanID {
			t.Errorf("%s %s span of %s: parent %s, want %s", want.op, want.kind, want.service, s.ParentID(), parent.SpanID)
		}
		if v, _ := s.Tag("rpc.system"); v != "nameko" {
			t.Errorf("%s %s span: rpc.system = %v", want.op, want.kind, v)
		}
		parent = s
	}

	// OTEL_RESOURCE_ATTRIBUTES adds to the resource; service.name stays the service's.
	calcSpan, _ := spanOf(tr, calculator.Name, "calculator/multiply", "server")
	if !hasTag(tr.Processes[calcSpan.ProcessID].Tags, "deployment.environment", "e2e") {
		t.Errorf("calculator's resource lacks OTEL_RESOURCE_ATTRIBUTES: %v", tr.Processes[calcSpan.ProcessID])
	}

	flakyTraces, err := j.WaitFor(wait, "flaky", func(trs []jaegertest.Trace) bool { return len(trs) > 0 && len(trs[0].Spans) >= 2 })
	if err != nil {
		t.Fatalf("flaky's trace never reached Jaeger: %v", err)
	}
	for _, kind := range []string{"client", "server"} {
		service := map[string]string{"client": "e2e_caller", "server": "flaky"}[kind]
		s, ok := spanOf(flakyTraces[0], service, "flaky/fail", kind)
		if !ok {
			t.Fatalf("no %s span of flaky.fail", kind)
		}
		if v, _ := s.Tag("otel.status_code"); v != "ERROR" {
			t.Errorf("flaky.fail %s span: otel.status_code = %v, want ERROR", kind, v)
		}
	}
}

func TestTracesOverGRPC(t *testing.T) {
	j := jaegertest.Start(t)
	ctx := context.Background()
	app := runApp(t, map[string]any{"EXPORTER": "otlp", "ENDPOINT": j.OTLPGRPCEndpoint(), "PROTOCOL": "grpc"},
		framework.Service("grpc_calculator", calculator.New))
	client, err := hyphatest.Client(t, ctx, testbroker.URI(t), rpc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.Call[float64](ctx, client.Proxy("grpc_calculator"), "add", rpc.Args(1, 2)); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if err := app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	traces, err := j.WaitForTraces(wait, "grpc_calculator", 1)
	if err != nil {
		t.Fatalf("no trace over OTLP/gRPC: %v", err)
	}
	if _, ok := spanOf(traces[0], "grpc_calculator", "grpc_calculator/add", "server"); !ok {
		t.Fatalf("trace lacks the server span: %s", traces[0])
	}
}

func hasTag(tags []jaegertest.KeyValue, key string, value any) bool {
	for _, kv := range tags {
		if kv.Key == key && kv.Value == value {
			return true
		}
	}
	return false
}

// spanOf finds the span of service named op whose kind is kind.
func spanOf(tr jaegertest.Trace, service, op, kind string) (jaegertest.Span, bool) {
	for _, s := range tr.Spans {
		if k, _ := s.Tag("span.kind"); k == kind && s.OperationName == op && tr.ServiceOf(s) == service {
			return s, true
		}
	}
	return jaegertest.Span{}, false
}
