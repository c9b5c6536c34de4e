package rpc_test

import (
	"context"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// An exchange deleted under its services (RabbitMQ drops every binding to
// it) is declared again with the bindings, by the services' and the
// callers' connections: calls fail for a while, then go through again
// without anything restarted.
func TestCallsComeBackWhenTheExchangeIsDeleted(t *testing.T) {
	t.Parallel()
	const exchange = "rpc-deleted-under-us"
	serveWith(t, rpc.ServerConfig{Service: "topo", Exchange: exchange, Pool: worker.NewPool(2)}, mathService(nil))
	ctx := context.Background()
	c, err := hyphatest.Client(t, ctx, testbroker.URI(t), rpc.Config{Exchange: exchange, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	add := func() error {
		sum, err := rpc.Call[float64](ctx, c.Proxy("topo"), "add", pair{A: 1, B: 2})
		if err == nil && sum != 3 {
			t.Fatalf("add = %v", sum)
		}
		return err
	}
	if err := add(); err != nil {
		t.Fatal(err)
	}
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDelete(exchange, false, false); err != nil {
		t.Fatal(err)
	}
	if err := add(); err == nil {
		t.Fatal("a call went through the deleted exchange")
	}
	// Within two topology checks, and well before the minute it took when
	// nothing declared them again.
	deadline := time.Now().Add(3 * 5 * time.Second)
	for {
		err := add()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls never came back after the exchange was deleted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
