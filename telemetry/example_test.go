package telemetry_test

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
)

// A standalone client traced and measured as a service's is: the same two
// interceptors serve servers, handlers, dispatchers and timers.
func Example() {
	ctx := context.Background()
	tp := sdktrace.NewTracerProvider()
	defer tp.Shutdown(ctx)
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(ctx)
	metrics, err := telemetry.Metrics(mp, "calculator") // the services it calls
	if err != nil {
		panic(err)
	}
	client, err := rpc.Dial(ctx, rpc.Config{URI: "memory://telemetry-example", Owner: "reports",
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, propagation.TraceContext{}), metrics}})
	if err != nil {
		panic(err)
	}
	defer client.Close()
	_, _ = rpc.Call[float64](ctx, client.Proxy("calculator"), "add", rpc.Args(1, 2))
}
