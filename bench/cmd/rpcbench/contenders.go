package main

import (
	"context"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/memory"
)

// contender is one way of serving and calling add.
type contender struct {
	name  string
	about string
	// start serves add and returns a client's call, and the stop of both;
	// uri is the bench's vhost on RabbitMQ.
	start func(ctx context.Context, uri string) (caller, func(), error)
}

const (
	rawSafeName = "raw-safe"
	rawMinName  = "raw-min"
	memoryName  = "bench" // the embedded broker's name
)

var contenders = []contender{
	{rawSafeName, "amqp091-go by hand doing the broker work Hypha does: durable request queue, persistent messages, " +
		"mandatory request with its confirm awaited, the request acked after its reply's confirm, prefetch 10",
		rawStart(rawSafe, true)},
	{rawMinName, "amqp091-go by hand, the least broker work: transient queue and messages, auto-ack, no confirms",
		rawStart(rawMin, false)},
	{"hypha-server", "Hypha's rpc.NewServer (10 workers) called by a hand-written nameko-protocol client " +
		"that never waits for confirms and auto-acks its replies", hyphaServerStart},
	{"hypha", "rpc.Dial client calling the same Hypha server: both sides Hypha", hyphaStart("", false)},
	{"hypha-transient", "the same, with RPC_PERSISTENT false: transient requests, and so transient replies " +
		"(no disk write at the broker; lost if it restarts)", hyphaStart("", true)},
	{"hypha-memory", "rpc.Dial client and Hypha server in process on the embedded broker (memory://bench)",
		hyphaStart("memory://"+memoryName, false)},
	{"watermill", "watermill v1.5.1 cqrs + components/requestreply over watermill-amqp/v3 (see notes)",
		watermillStart},
}

func rawStart(s safety, mandatory bool) func(ctx context.Context, uri string) (caller, func(), error) {
	return func(_ context.Context, uri string) (caller, func(), error) {
		queue := "raw-calculator-" + map[bool]string{true: "safe", false: "min"}[s.durable]
		stopServer, err := rawServe(uri, queue, s)
		if err != nil {
			return nil, nil, err
		}
		c, err := dialWire(uri, route{routingKey: queue, mandatory: mandatory}, s)
		if err != nil {
			stopServer()
			return nil, nil, err
		}
		return c.call, func() { c.close(); stopServer() }, nil
	}
}

// wireHeaders are the context headers a standalone nameko client sends.
var wireHeaders = amqp091.Table{
	"nameko.call_id_stack": []any{"standalone_rpc_client.bench.0"},
	"nameko.language":      "en-gb",
}

func hyphaServerStart(ctx context.Context, uri string) (caller, func(), error) {
	stopServer, err := hyphaServe(ctx, uri)
	if err != nil {
		return nil, nil, err
	}
	c, err := dialWire(uri, route{
		exchange: rpc.DefaultExchange, routingKey: calculatorName + ".add",
		replyExchange: rpc.DefaultExchange, owner: rpc.StandaloneOwner, headers: wireHeaders,
	}, safety{durable: true})
	if err != nil {
		stopServer()
		return nil, nil, err
	}
	return c.call, func() { c.close(); stopServer() }, nil
}

// hyphaStart runs the Hypha server and client on uri, or on the bench's
// vhost when uri is empty; transient sends the requests transient.
func hyphaStart(uri string, transient bool) func(ctx context.Context, vhostURI string) (caller, func(), error) {
	return func(ctx context.Context, vhostURI string) (caller, func(), error) {
		if uri == "" {
			uri = vhostURI
		}
		stopServer, err := hyphaServe(ctx, uri)
		if err != nil {
			return nil, nil, err
		}
		call, closeClient, err := hyphaDial(ctx, uri, transient)
		if err != nil {
			stopServer()
			return nil, nil, err
		}
		return call, func() {
			closeClient()
			stopServer()
			memory.Reset(memoryName)
		}, nil
	}
}
