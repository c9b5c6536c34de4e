// Package apptest starts Hypha apps and clients for tests, on the test
// package's own vhost (see testbroker):
//
//	func TestMain(m *testing.M) { testbroker.Main(m) }
//
//	func TestScore(t *testing.T) {
//		apptest.Start(t, framework.Service(calculator.Name, calculator.New))
//		sum, err := rpc.Call[float64](ctx, apptest.Dial(t).Proxy(calculator.Name), "add", rpc.Args(1, 2))
//	}
package apptest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// timeout bounds starting and stopping an app, and a client's calls.
const timeout = 10 * time.Second

// Quiet is a logger that drops everything, the default of Start.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Start builds and starts an app on the package's vhost, with GRACE_PERIOD 5
// and logs dropped unless opts say otherwise (later options win), and stops
// it when the test ends, failing the test if stopping fails.
func Start(t testing.TB, opts ...framework.Option) *framework.App {
	t.Helper()
	opts = append([]framework.Option{
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 5}),
		framework.WithLogger(Quiet),
	}, opts...)
	app, err := framework.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Error("stopping the app:", err)
		}
	})
	return app
}

// Dial returns a standalone client on the package's vhost whose calls time
// out after 10 s, closed when the test ends.
func Dial(t testing.TB) *rpc.Client {
	t.Helper()
	ctx := context.Background()
	conn, err := dial.Dial(ctx, testbroker.URI(t), dial.Name(rpc.StandaloneOwner))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := rpc.NewClient(conn, rpc.Config{Timeout: timeout})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
