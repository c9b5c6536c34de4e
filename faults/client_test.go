//go:build faults

package faults_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// ownedClient is an RPC client with the connection it was opened on: Close
// closes both, as a program's shutdown does.
type ownedClient struct {
	*rpc.Client
	broker dial.Broker
}

// Close closes the client, then its connection.
func (c ownedClient) Close() error {
	err := c.Client.Close()
	if cerr := c.broker.Close(); err == nil {
		err = cerr
	}
	return err
}

// openClient connects an RPC client as a program that has loaded config
// does: the settings are config's with values on top, the connection is
// dial.Dial's with dial.Settings, and the client's Config rpc.ConfigFrom's. The client and its
// connection are closed when the test ends, if the test has not closed
// them; ics wrap its calls.
func openClient(ctx context.Context, t *testing.T, values map[string]any, log *slog.Logger,
	ics ...entrypoint.Interceptor) (ownedClient, error) {
	t.Helper()
	cfg, err := config.Load("", values)
	if err != nil {
		return ownedClient{}, err
	}
	b, err := dial.Dial(ctx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name(rpc.StandaloneOwner), dial.Logger(log))
	if err != nil {
		return ownedClient{}, err
	}
	rc := rpc.ConfigFrom(cfg.Settings)
	rc.Logger, rc.Interceptors = log, ics
	c := rpc.NewClient(b, rc)
	if err := c.Start(ctx); err != nil {
		b.Close()
		return ownedClient{}, err
	}
	oc := ownedClient{Client: c, broker: b}
	t.Cleanup(func() {
		if err := oc.Close(); err != nil {
			t.Error("closing the client:", err)
		}
	})
	return oc, nil
}
