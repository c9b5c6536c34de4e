package introspect_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// Fetch asks a running service what it offers: here the calculator, on the
// embedded broker.
func ExampleFetch() {
	ctx := context.Background()
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://introspect-example"}),
		framework.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		framework.Service(calculator.Name, calculator.New),
	)
	if err != nil {
		panic(err)
	}
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)
	conn, err := dial.Dial(ctx, "memory://introspect-example")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()

	desc, err := introspect.Fetch(ctx, client.Proxy(calculator.Name))
	if err != nil {
		panic(err)
	}
	for _, m := range desc.Methods {
		fmt.Printf("%s: %s\n", m.Signature(), m.Doc)
	}
	// Output:
	// add(a, b): Returns a + b.
	// subtract(a, b): Returns a - b.
	// multiply(a, b): Returns a × b.
	// divide(a, b): Returns a ÷ b.
}
