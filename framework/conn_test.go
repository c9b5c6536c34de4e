package framework_test

import (
	"context"
	"testing"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
	transportdial "github.com/hypha-go/hypha/transport/dial"
)

// dialClient starts a client with cfg on a connection of its own to uri, as
// a program that is not a service does (transportdial.Dial, then rpc.NewClient). The
// connection is closed when the test ends, after the client (whose Close
// leaves it open); it is named after the client's owner.
func dialClient(t testing.TB, ctx context.Context, uri string, cfg rpc.Config) (*rpc.Client, error) {
	t.Helper()
	name := cfg.Owner
	if name == "" {
		name = rpc.StandaloneOwner
	}
	conn, err := transportdial.Dial(ctx, uri, transportdial.Name(name), transportdial.Logger(cfg.Logger))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	c := rpc.NewClient(conn, cfg)
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// dialDispatcher returns a dispatcher with cfg on a connection of its own to
// uri, named "<source>-dispatcher" and closed when the test ends.
func dialDispatcher(t testing.TB, ctx context.Context, uri string, cfg events.DispatcherConfig) (*events.Dispatcher, error) {
	t.Helper()
	conn, err := transportdial.Dial(ctx, uri, transportdial.Name(cfg.Source+"-dispatcher"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return events.NewDispatcher(conn, cfg), nil
}
