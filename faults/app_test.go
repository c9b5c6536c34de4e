//go:build faults

package faults_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/internal/testbroker"
)

// quiet is a logger that drops everything, the default of startApp.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startApp builds and starts an app on the package's vhost, with
// GRACE_PERIOD 5 and logs dropped unless opts say otherwise (later options
// win), and stops it when the test ends, failing the test if stopping fails.
func startApp(t testing.TB, opts ...framework.Option) *framework.App {
	t.Helper()
	opts = append([]framework.Option{
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 5}),
		framework.Logger(quiet),
	}, opts...)
	app, err := framework.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := app.Stop(ctx); err != nil {
			t.Error("stopping the app:", err)
		}
	})
	return app
}
