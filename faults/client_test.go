//go:build faults

package faults_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// openClient connects an RPC client as a program that has loaded config
// does: the settings are config's with values on top, the connection is
// dial.Open's and the client's Config rpc.ConfigFrom's. The client and its
// connection are closed when the test ends; ics wrap its calls.
func openClient(ctx context.Context, t *testing.T, values map[string]any, log *slog.Logger,
	ics ...rpc.ClientInterceptor) (*rpc.Client, error) {
	t.Helper()
	cfg, err := config.Load("", values)
	if err != nil {
		return nil, err
	}
	b, err := dial.Open(ctx, cfg.Settings, dial.Owner{Name: rpc.StandaloneOwner, Logger: log})
	if err != nil {
		return nil, err
	}
	rc := rpc.ConfigFrom(cfg.Settings)
	rc.Logger, rc.Interceptors = log, ics
	c := rpc.NewClient(b, rc)
	if err := c.Start(ctx); err != nil {
		b.Close()
		return nil, err
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error("closing the client:", err)
		}
		b.Close()
	})
	return c, nil
}
