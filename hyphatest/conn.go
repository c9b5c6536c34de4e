package hyphatest

import (
	"context"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// Client starts an RPC client with cfg on a connection of its own to the
// broker at uri, as a program that is not a service calls one (dial.Dial,
// then rpc.NewClient and Start): the connection is named after cfg.Owner
// (rpc.StandaloneOwner when empty) and logs to cfg.Logger. Connecting
// waits for the broker per RECONNECT's default until ctx ends. The client,
// then its connection, are closed when the test ends. The error is the
// connection's or Start's, for a test that expects one (a refused login,
// say) to check.
func Client(t TB, ctx context.Context, uri string, cfg rpc.Config) (*rpc.Client, error) {
	t.Helper()
	name := cfg.Owner
	if name == "" {
		name = rpc.StandaloneOwner
	}
	conn, err := dial.Dial(ctx, uri, dial.Name(name), dial.Logger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	c := rpc.NewClient(conn, cfg)
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// Dispatcher returns an event dispatcher with cfg on a connection of its
// own to the broker at uri, named "<cfg.Source>-dispatcher", as a program
// that is not a service dispatches (dial.Dial, then events.NewDispatcher).
// Connecting waits for the broker per RECONNECT's default until ctx ends.
// The connection is closed when the test ends.
func Dispatcher(t TB, ctx context.Context, uri string, cfg events.DispatcherConfig) (*events.Dispatcher, error) {
	t.Helper()
	conn, err := dial.Dial(ctx, uri, dial.Name(cfg.Source+"-dispatcher"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return events.NewDispatcher(conn, cfg), nil
}
