package hyphatest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// envAMQPURI names the environment variable that, when set, makes Start run
// services on that broker (say amqp://guest:guest@localhost:5672/hypha-test)
// instead of the embedded one: the same tests then run as integration tests
// against RabbitMQ. Give them a virtual host of their own: queues and
// messages a test leaves there are seen by the next.
const envAMQPURI = "HYPHA_TEST_AMQP_URI"

// timeout bounds starting and stopping an app, and the calls of its client.
const timeout = 10 * time.Second

// TB is the part of *testing.T and *testing.B the kit uses.
type TB interface {
	Helper()
	Name() string
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// quiet drops the app's logs unless the test gives framework.Logger.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// brokers numbers the embedded brokers, so that every Start has its own.
var brokers atomic.Int64

// App is a started app under test, with a client of its own on its broker.
type App struct {
	app    *framework.App
	uri    string
	broker dial.Broker
	client *rpc.Client
	hub    *hub
}

// Start builds and starts an app of the given services on a broker of the
// test's own: the embedded broker "memory://<test name>-<n>", or the one
// environment variable HYPHA_TEST_AMQP_URI names (say
// amqp://guest:guest@localhost:5672/hypha-test: the same tests then run as
// integration tests against RabbitMQ; give them a virtual host of their own,
// since queues and messages a test leaves there are seen by the next).
// Starting and stopping are bounded by 10 seconds. Logs are dropped and
// GRACE_PERIOD is 5 seconds unless opts say otherwise (later options win).
// The app, its client and its embedded broker are stopped when the test
// ends; a failure to stop fails the test.
func Start(t TB, opts ...framework.Option) *App {
	t.Helper()
	uri, name := os.Getenv(envAMQPURI), ""
	if uri == "" {
		name = fmt.Sprintf("%s-%d", hostSafe(t.Name()), brokers.Add(1))
		uri = memory.Scheme + "://" + name
		t.Cleanup(func() { memory.Reset(name) })
	}
	a := &App{uri: uri, hub: &hub{}}
	app := Run(t, uri, append(opts[:len(opts):len(opts)], framework.Interceptors(a.hub.intercept))...)
	a.app = app
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The client connects as the app does, with every key of its config.
	var err error
	if a.broker, err = dial.Dial(ctx, app.Config().AMQPURI, dial.Settings(app.Config().Settings), dial.Name("hyphatest")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.broker.Close() })
	rc := rpc.ConfigFrom(app.Config().Settings)
	rc.Owner, rc.Timeout = "hyphatest", timeout
	a.client = rpc.NewClient(a.broker, rc)
	if err := a.client.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.client.Close() })
	return a
}

// hostSafe turns a test's name into a broker name: lower-case letters,
// digits and dashes.
func hostSafe(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return '-'
	}, name)
}

// URI is the broker the app runs on.
func (a *App) URI() string { return a.uri }

// Framework is the running app, for its Config, addresses and the like.
func (a *App) Framework() *framework.App { return a.app }

// Proxy returns a proxy to service through the kit's client, as a program
// outside the app would call it; calls time out after 10 seconds.
func (a *App) Proxy(service string) *rpc.Proxy { return a.client.Proxy(service) }

// Dispatch dispatches an event of eventType from source, as that service
// would (nameko's event_dispatcher): every handler bound to it receives it,
// with ctx's context data. It returns once the broker has taken it; a
// Waiter says when a handler has run.
func (a *App) Dispatch(ctx context.Context, source, eventType string, payload any) error {
	return events.NewDispatcher(a.broker, events.DispatcherConfig{Source: source}).Dispatch(ctx, eventType, payload)
}
