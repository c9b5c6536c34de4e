// Command client calls the example services "calculator", "user_service",
// "orders" and "mailer" as a standalone program (nameko's ClusterRpcClient)
// and prints one line per call. It reads ./config.yaml with package config
// (AMQP_URI in the environment overrides the broker; RPC_TIMEOUT, RECONNECT
// and RPC_RETRY_POLICY apply to its calls), waits up to 30 s for the services to
// answer, then makes its calls; it exits non-zero, saying why, when anything
// fails. The last call creates an order, whose order_created event the mailer
// handles: the client polls mailer.sent() until the confirmation shows up.
// With GATEWAY_URL set (http://127.0.0.1:8000, where examples/gateway
// listens), it then calls the gateway over HTTP too.
//
// Start the services first, then, from the project root:
//
//	go run ./examples/calculator &
//	go run ./examples/users &
//	go run ./examples/orders &
//	go run ./examples/mailer &
//	go run ./examples/client
//
// scripts/run-examples.sh (make run) does all of it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/examples/tour"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// dialTimeout bounds connecting to the broker.
const dialTimeout = 30 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	interrupted := ctx.Err() != nil
	stop()
	if interrupted {
		fmt.Fprintln(os.Stderr, "client: interrupted")
		os.Exit(130)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "client: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.Load("", nil)
	if err != nil {
		return fmt.Errorf("loading config: %w", err)
	}
	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	// dial.Settings applies every connection-level key (HEARTBEAT, AMQP_SSL,
	// MAX_MESSAGE_SIZE, RECONNECT, ...); rpc.ConfigFrom every RPC_* key.
	broker, err := dial.Dial(dialCtx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name(rpc.StandaloneOwner))
	if err != nil {
		return fmt.Errorf("connecting to the broker: %w", err)
	}
	defer broker.Close()
	c := rpc.NewClient(broker, rpc.ConfigFrom(cfg.Settings))
	if err := c.Start(dialCtx); err != nil {
		return fmt.Errorf("starting the client: %w", err)
	}
	defer c.Close()
	if err := tour.Run(ctx, c, os.Stdout); err != nil {
		return err
	}
	if url := os.Getenv("GATEWAY_URL"); url != "" {
		return tour.HTTP(ctx, url, os.Stdout)
	}
	return nil
}
