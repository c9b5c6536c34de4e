package rpc_test

import (
	"context"
	"testing"

	"github.com/hypha-go/hypha/config"
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

// maxMessageSize is the connection option of MAX_MESSAGE_SIZE n, config's
// defaults otherwise.
func maxMessageSize(n int64) transportdial.Option {
	s := config.DefaultSettings()
	s.MaxMessageSize = n
	return transportdial.Settings(s)
}
