package telemetry_test

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
	"github.com/hypha-go/hypha/transport/dial"
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
	conn, err := dial.Dial(ctx, "memory://telemetry-example")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{Owner: "reports",
		Interceptors: []entrypoint.Interceptor{telemetry.Tracing(tp, propagation.TraceContext{}), metrics}})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	_, _ = rpc.Call[float64](ctx, client.Proxy("calculator"), "add", rpc.Args(1, 2))
}
