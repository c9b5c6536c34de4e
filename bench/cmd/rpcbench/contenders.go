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
	// embedded: the contender runs on the in-process broker, not RabbitMQ.
	embedded bool
	// base is the contender its "vs raw-safe" column compares with: the
	// raw-safe of the same prefetch (default raw-safe).
	base string
}

// wideWorkers is the second MAX_WORKERS (and prefetch) the server is
// measured at, beside maxWorkers.
const wideWorkers = 64

const (
	rawSafeName = "raw-safe"
	rawMinName  = "raw-min"
	memoryName  = "bench" // the embedded broker's name
)

var contenders = []contender{
	{rawSafeName, "amqp091-go by hand doing the broker work Hypha does, wired as nameko wires RPC: requests through a " +
		"topic exchange to a durable queue, replies through it to a durable reply queue with x-expires, persistent " +
		"messages, mandatory request with its confirm awaited, the request acked after its reply's confirm, prefetch 10",
		rawStart(rawSafe, true, true), false, ""},
	{rawSafeName + "-64w", "raw-safe with prefetch 64", rawStart(rawSafe.withPrefetch(wideWorkers), true, true), false, ""},
	{"raw-exclusive", "raw-safe without nameko's wiring: requests straight to the durable queue through the default " +
		"exchange, replies to an exclusive queue; the same confirms, acks and persistent messages",
		rawStart(rawSafe, true, false), false, ""},
	{rawMinName, "amqp091-go by hand, the least broker work: transient queue and messages, auto-ack, no confirms",
		rawStart(rawMin, false, false), false, ""},
	{"hypha-server", "Hypha's rpc.Plugin server (10 workers) called by a hand-written nameko-protocol client " +
		"that never waits for confirms and auto-acks its replies", hyphaServerStart(maxWorkers), false, ""},
	{"hypha-server-64w", "hypha-server with MAX_WORKERS 64 (so prefetch 64), against raw-safe-64w",
		hyphaServerStart(wideWorkers), false, rawSafeName + "-64w"},
	{"hypha", "standalone rpc client calling the same Hypha server: both sides Hypha", hyphaStart("", false), false, ""},
	{"hypha-transient", "the same, with RPC_PERSISTENT false: transient requests, and so transient replies " +
		"(no disk write at the broker; lost if it restarts)", hyphaStart("", true), false, ""},
	{"hypha-memory", "standalone rpc client and Hypha server in process on the embedded broker (memory://bench)",
		hyphaStart("memory://"+memoryName, false), true, ""},
	{"watermill", "watermill v1.5.1 cqrs + components/requestreply over watermill-amqp/v3 (see notes)",
		watermillStart, false, ""},
}

// rawExchange is the topic exchange raw-safe routes requests and replies
// through, as Hypha and nameko route theirs through nameko-rpc.
const rawExchange = "raw-rpc"

// rawStart runs a hand-written server and client. raw-safe is wired as
// nameko wires RPC, so that the broker does for it what it does for Hypha:
// the request goes through a topic exchange to the durable rpc-<service>
// queue, and the reply through the same exchange to a durable reply queue
// with x-expires. Without nameko's wiring (raw-min, raw-exclusive) requests
// go straight to their queue through the default exchange, and replies to an
// exclusive queue.
func rawStart(s safety, mandatory, nameko bool) func(ctx context.Context, uri string) (caller, func(), error) {
	return func(_ context.Context, uri string) (caller, func(), error) {
		queue, exchange, bindKey := "raw-calculator-"+map[bool]string{true: "safe", false: "min"}[s.durable], "", ""
		r := route{routingKey: queue, mandatory: mandatory}
		if nameko {
			queue, exchange, bindKey = "rpc-rawcalc", rawExchange, "rawcalc.*"
			r = route{exchange: rawExchange, routingKey: "rawcalc.add", mandatory: mandatory,
				replyExchange: rawExchange, owner: rpc.StandaloneOwner, headers: wireHeaders}
		}
		stopServer, err := rawServe(uri, queue, exchange, bindKey, s)
		if err != nil {
			return nil, nil, err
		}
		c, err := dialWire(uri, r, s)
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

func hyphaServerStart(workers int) func(ctx context.Context, uri string) (caller, func(), error) {
	return func(ctx context.Context, uri string) (caller, func(), error) {
		return hyphaServerWire(ctx, uri, workers)
	}
}

// hyphaServerWire serves add with a Hypha server of workers workers and
// calls it with the hand-written nameko-protocol client.
func hyphaServerWire(ctx context.Context, uri string, workers int) (caller, func(), error) {
	stopServer, err := hyphaServe(ctx, uri, workers)
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
		stopServer, err := hyphaServe(ctx, uri, maxWorkers)
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
