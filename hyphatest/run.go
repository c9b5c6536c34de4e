package hyphatest

import (
	"context"

	"github.com/hypha-go/hypha/framework"
)

// Run builds and starts an app of the given options on the broker at uri
// (a RabbitMQ virtual host of the test's own, or an embedded broker
// "memory://<name>", which lives until memory.Reset), with nothing of the
// kit's added: no client, no interceptors. Logs are dropped and
// GRACE_PERIOD is 5 seconds unless opts say otherwise (later options win).
// Starting and stopping are each bounded by 10 seconds; a failure to build or
// start fails the test at once, and the app is stopped when the test ends,
// a failure to stop failing the test. Start is Run on a broker of the
// test's own, with a client and the interceptors Hook and Waiter need.
func Run(t TB, uri string, opts ...framework.Option) *framework.App {
	t.Helper()
	opts = append([]framework.Option{
		framework.ConfigValues(map[string]any{"AMQP_URI": uri, "GRACE_PERIOD": 5}),
		framework.Logger(quiet),
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
			t.Errorf("hyphatest: stopping the app: %v", err)
		}
	})
	return app
}
