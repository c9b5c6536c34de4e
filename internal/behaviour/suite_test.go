package behaviour

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/memory"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

// Broker names, as the transport subtests are named.
const (
	rabbitMQ = "rabbitmq"
	embedded = "memory"
)

// transportCase is one broker the suite runs against: uri gives the
// AMQP_URI a test uses, and cleans up after it.
type transportCase struct {
	name string
	uri  func(t *testing.T) string
}

var transports = []transportCase{
	{name: rabbitMQ, uri: func(t *testing.T) string { return testbroker.URI(t) }},
	{name: embedded, uri: memoryURI},
}

// memoryURI names an embedded broker after the test, reset when it ends;
// registered first, the reset runs after every other cleanup of the test.
func memoryURI(t *testing.T) string {
	name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
	t.Cleanup(func() { memory.Reset(name) })
	return memory.Scheme + "://" + name
}

// behaviourCase is one behaviour, checked on every broker in transports
// unless only names some of them.
type behaviourCase struct {
	name string
	run  func(t *testing.T, uri string)
	// only, when set, lists the brokers the case runs on; why says what the
	// others do differently. The case is then reported, not skipped.
	only []string
	why  string
}

// cases lists the suite, in the order it runs.
var cases = slices.Concat(rpcCases, stopCases, eventCases, deadLetterCases)

// TestBehaviour runs every case on every broker: TestBehaviour/<broker>/<case>.
func TestBehaviour(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			for _, c := range cases {
				if c.only != nil && !slices.Contains(c.only, tc.name) {
					t.Logf("%s runs on %v only: %s", c.name, c.only, c.why)
					continue
				}
				t.Run(c.name, func(t *testing.T) { c.run(t, tc.uri(t)) })
			}
		})
	}
}

// timeout bounds starting and stopping an app, a client's calls and a
// wait for something to happen.
const timeout = 10 * time.Second

// stopApp stops app within timeout, failing t if stopping fails.
func stopApp(t *testing.T, app *framework.App) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		t.Error("stopping the app:", err)
	}
}

// config is framework.ConfigValues.
func config(values map[string]any) framework.Option { return framework.ConfigValues(values) }

// client dials a standalone client on uri, closed when the test ends.
func client(t *testing.T, uri string, interceptors ...entrypoint.Interceptor) *rpc.Client {
	t.Helper()
	c, err := hyphatest.Client(t, context.Background(), uri, rpc.Config{Timeout: timeout, Interceptors: interceptors})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dispatcher dials an event dispatcher for source on uri, closed when the
// test ends.
func dispatcher(t *testing.T, uri, source string) *events.Dispatcher {
	t.Helper()
	d, err := hyphatest.Dispatcher(t, context.Background(), uri, events.DispatcherConfig{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// receive waits up to timeout for a value from ch, failing t with what
// when none comes.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(timeout):
		t.Fatalf("%s: nothing after %v", what, timeout)
		panic("unreachable")
	}
}

// quietFor fails t if ch yields a value within d: something that must not
// happen did.
func quietFor[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v", what, v)
	case <-time.After(d):
	}
}
