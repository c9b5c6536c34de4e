package framework_test

import (
	"context"
	"fmt"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/rpc"
	transportdial "github.com/hypha-go/hypha/transport/dial"
)

// Interceptors wrap every entrypoint kind, here an RPC call; the same
// interceptor would see event handler runs, timer ticks and HTTP requests,
// and, with Call.Client set, the RPC calls and dispatches the services make.
func ExampleInterceptors() {
	audit := func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		err := next(ctx)
		fmt.Println(call.Kind, call.Service, call.Name, err)
		return err
	}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://framework-interceptors-example"}),
		framework.Logger(quiet),
		framework.Interceptors(audit),
		framework.Service(calculator.Name, calculator.New),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)
	conn, err := transportdial.Dial(ctx, "memory://framework-interceptors-example")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	_, _ = rpc.Call[float64](ctx, client.Proxy(calculator.Name), "divide", rpc.Args(1, 0))
	// Output: rpc calculator divide ZeroDivisionError: division by zero
}
