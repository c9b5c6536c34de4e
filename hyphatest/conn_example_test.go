package hyphatest_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/memory"
)

// Run starts an app on a broker the test chooses (here an embedded one;
// in an integration test, a RabbitMQ virtual host of the test's own) with
// nothing of the kit's added.
func ExampleRun() {
	t := &exampleT{}
	defer t.end()

	t.Cleanup(func() { memory.Reset("example-run") })
	app := hyphatest.Run(t, "memory://example-run",
		framework.Service(calculator.Name, calculator.New),
		framework.ConfigValues(map[string]any{"GRACE_PERIOD": 1}))
	fmt.Println(app.Config().AMQPURI, app.Config().GracePeriod)
	// Output: memory://example-run 1s
}

// Client calls services as a program outside the app does, on a
// connection of its own.
func ExampleClient() {
	t := &exampleT{}
	defer t.end()

	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	c, err := hyphatest.Client(t, context.Background(), app.URI(), rpc.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := rpc.Call[float64](context.Background(), c.Proxy(calculator.Name), "add", calculator.Operands{A: 1, B: 2})
	fmt.Println(sum, err)
	// Output: 3 <nil>
}

// Dispatcher dispatches events as a service outside the app does, on a
// connection of its own.
func ExampleDispatcher() {
	t := &exampleT{}
	defer t.end()

	app := hyphatest.Start(t, framework.Service(mailer.Name, mailer.New))
	confirmed := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	d, err := hyphatest.Dispatcher(t, context.Background(), app.URI(), events.DispatcherConfig{Source: mailer.Source})
	if err != nil {
		t.Fatal(err)
	}
	_ = d.Dispatch(context.Background(), mailer.EventType, mailer.Order{ID: "o-1", Item: "socks", Quantity: 2})
	_, err = confirmed.Wait(2 * time.Second)
	fmt.Println("send_confirmation returned", err)
	// Output: send_confirmation returned <nil>
}
