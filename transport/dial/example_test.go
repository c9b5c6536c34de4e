package dial_test

import (
	"context"
	"fmt"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// A program that is not a service dials one connection and calls services
// through a client on it. Here the calculator it calls runs in the same
// process, on the embedded broker; an amqp:// URI reaches RabbitMQ alike.
func Example() {
	ctx := context.Background()
	defer memory.Reset("dial-example")
	stop := serveCalculator(ctx, "memory://dial-example")
	defer stop()

	conn, err := dial.Dial(ctx, "memory://dial-example")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()

	sum, err := rpc.Call[float64](ctx, client.Proxy("calculator"), "add", rpc.Args(1, 2))
	fmt.Println(sum, err)
	// Output: 3 <nil>
}

// A program that has loaded config passes its settings, so that every
// connection-level key (HEARTBEAT, AMQP_SSL, RECONNECT, ...) applies, and
// shares the connection between a client and a dispatcher.
func Example_settings() {
	ctx := context.Background()
	defer memory.Reset("dial-settings-example")
	cfg, err := config.Load("", map[string]any{"AMQP_URI": "memory://dial-settings-example"})
	if err != nil {
		panic(err)
	}
	stop := serveCalculator(ctx, cfg.AMQPURI)
	defer stop()

	conn, err := dial.Dial(ctx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name("reporter"))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.ConfigFrom(cfg.Settings))
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	dispatcher := events.NewDispatcher(conn, events.DispatcherConfig{Source: "reporter"})

	sum, err := rpc.Call[float64](ctx, client.Proxy("calculator"), "add", rpc.Args(2, 3))
	fmt.Println(sum, err)
	fmt.Println(dispatcher.Dispatch(ctx, "report_made", map[string]any{"sum": sum}))
	// Output:
	// 5 <nil>
	// <nil>
}

// serveCalculator runs a calculator service with add on a connection of its
// own to uri, until stop.
func serveCalculator(ctx context.Context, uri string) (stop func()) {
	conn, err := dial.Dial(ctx, uri, dial.Name("calculator"))
	if err != nil {
		panic(err)
	}
	r := entrypoint.NewRegistry("calculator")
	rpc.Handle(r, "add", func(_ context.Context, in struct{ A, B float64 }) (float64, error) {
		return in.A + in.B, nil
	})
	srv, err := rpc.Plugin().Serve(&entrypoint.Service{Name: "calculator", Registry: r, Broker: conn,
		Settings: config.DefaultSettings()})
	if err != nil {
		panic(err)
	}
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	return func() {
		_ = srv.Drain(ctx)
		_ = srv.Close()
		conn.Close()
	}
}
