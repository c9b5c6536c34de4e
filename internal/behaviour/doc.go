// Package behaviour holds one suite of behaviour tests that runs against
// every broker Hypha can use: each case runs once on RabbitMQ (the test
// package's vhost, see internal/testbroker) and once on the embedded broker
// of transport/memory, with a broker of its own per case. It has no code
// outside its tests.
//
// The cases are what a user of Hypha relies on, seen only through the
// public API: results and every kind of error of an RPC call, timeouts and
// server-side expiry, context data across hops, worker limits and
// prefetch, graceful stop, the three event handler types, retries and the
// dead-letter queue. A behaviour that differs between the brokers is a bug
// in one of them. Run it with
//
//	go test -race ./internal/behaviour/
//
// and one broker's half with -run 'TestBehaviour/memory/' (or rabbitmq).
package behaviour
