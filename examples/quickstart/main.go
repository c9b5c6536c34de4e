// Command quickstart runs the example services calculator, user_service,
// orders, mailer and gateway in one process, on the embedded broker, then
// prints the tour of examples/client, calls the gateway over HTTP with Go's
// client (printing the equivalent curl) and exits: Hypha with nothing installed. It is also
// the modular-monolith mode at work: several framework.Service in one app,
// calling each other through the same broker they would use apart.
//
//	go run ./examples/quickstart                                  # embedded broker
//	AMQP_URI=amqp://guest:guest@localhost:5672/ go run ./examples/quickstart  # RabbitMQ
//
// It reads ./config.yaml like the services; AMQP_URI picks the broker, and
// memory://quickstart is the default. It logs at warn unless LOG_LEVEL says
// otherwise, so that the tour stands out.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/gateway/gateway"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/tour"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// startTimeout bounds starting the services and connecting the client.
const startTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run starts the services, prints the tour to w and stops them again.
func run(ctx context.Context, w io.Writer) error {
	values := map[string]any{}
	uri := os.Getenv("AMQP_URI")
	if uri == "" {
		uri = "memory://quickstart"
		values["AMQP_URI"] = uri
	}
	if os.Getenv("LOG_LEVEL") == "" && os.Getenv("HYPHA_LOG_LEVEL") == "" {
		values["LOG_LEVEL"] = "warn"
	}
	if os.Getenv("HTTP_ADDRESS") == "" && os.Getenv("HYPHA_HTTP__ADDRESS") == "" {
		values["HTTP.ADDRESS"] = "127.0.0.1:0" // a free port
	}
	app, err := framework.New(
		framework.ConfigValues(values),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
		framework.Service(orders.Name, orders.New),
		framework.Service(mailer.Name, mailer.New),
		framework.Service(gateway.Name, gateway.New),
	)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := app.Start(startCtx); err != nil {
		return fmt.Errorf("cannot start: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		_ = app.Stop(stopCtx)
	}()
	fmt.Fprintf(w, "calculator, user_service, orders, mailer and gateway run in this process on %s; the gateway serves http://%s\n",
		app.Config().AMQPURI, app.HTTPAddress())
	conn, err := dial.Dial(startCtx, app.Config().AMQPURI, dial.Settings(app.Config().Settings), dial.Name(rpc.StandaloneOwner))
	if err != nil {
		return fmt.Errorf("connecting the client: %w", err)
	}
	defer conn.Close()
	c := rpc.NewClient(conn, rpc.ConfigFrom(app.Config().Settings))
	if err := c.Start(startCtx); err != nil {
		return fmt.Errorf("starting the client: %w", err)
	}
	defer c.Close()
	if err := tour.Run(ctx, c, w); err != nil {
		return err
	}
	return tour.HTTP(ctx, "http://"+app.HTTPAddress(), w)
}
