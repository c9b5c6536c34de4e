package behaviour

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

var eventCases = []behaviourCase{
	{name: "events service pool once per service", run: testServicePool},
	{name: "events singleton once in total", run: testSingleton},
	{name: "events broadcast once per instance", run: testBroadcast},
	{name: "events carry context data", run: testEventContextData},
	{name: "events wait for a reliable handler", run: testReliableDelivery},
	{name: "events unfinished at stop run again", run: testEventAfterStop},
	{name: "events retried on error", run: testRetries},
	{name: "events dead-lettered after the retries", run: testDeadLetter},
}

// tick is the payload of the suite's events.
type tick struct {
	N int `json:"n"`
}

// handlers is a service that only registers event handlers.
type handlers func(r *entrypoint.Registry)

// Register calls h.
func (h handlers) Register(r *entrypoint.Registry) { h(r) }

// ticker is a service named service with one handler of source's tick
// events, which reports "<who>/<n>" on got for each event it handles.
func ticker(service, source, who string, got chan<- string, opts ...events.Option) framework.Option {
	return framework.Service(service, func() handlers {
		return func(r *entrypoint.Registry) {
			events.Handle(r, "on_tick", source, "tick", func(_ context.Context, in tick) error {
				got <- fmt.Sprintf("%s/%d", who, in.N)
				return nil
			}, opts...)
		}
	})
}

// dispatchTicks dispatches n tick events from source, numbered from 0.
func dispatchTicks(t *testing.T, uri, source string, n int) {
	t.Helper()
	d := dispatcher(t, uri, source)
	for i := range n {
		if err := d.Dispatch(context.Background(), "tick", tick{N: i}); err != nil {
			t.Fatal(err)
		}
	}
}

// expectRuns waits for the runs want lists, each once, and then for a
// while for any run more.
func expectRuns(t *testing.T, got <-chan string, want ...string) {
	t.Helper()
	runs := map[string]int{}
	for range want {
		runs[receive(t, got, fmt.Sprintf("the runs so far %v, want %v", runs, want))]++
	}
	quietFor(t, got, 300*time.Millisecond, "a run more than expected")
	wantRuns := map[string]int{}
	for _, w := range want {
		wantRuns[w]++
	}
	if !maps.Equal(runs, wantRuns) {
		t.Fatalf("runs %v, want %v", runs, wantRuns)
	}
}

// testServicePool: each service handles each event once, however many
// instances it has.
func testServicePool(t *testing.T, uri string) {
	const src = "pool_src"
	got := make(chan string, 100)
	hyphatest.Run(t, uri, ticker("pool_a", src, "a", got), ticker("pool_b", src, "b", got))
	hyphatest.Run(t, uri, ticker("pool_a", src, "a", got)) // a second instance of pool_a
	dispatchTicks(t, uri, src, 3)
	expectRuns(t, got, "a/0", "a/1", "a/2", "b/0", "b/1", "b/2")
}

// testSingleton: one handler in the whole cluster handles each event,
// whichever service it is in.
func testSingleton(t *testing.T, uri string) {
	const src = "single_src"
	got := make(chan string, 100)
	single := events.Type(events.Singleton)
	hyphatest.Run(t, uri, ticker("single_a", src, "one", got, single))
	hyphatest.Run(t, uri, ticker("single_b", src, "one", got, single))
	dispatchTicks(t, uri, src, 3)
	expectRuns(t, got, "one/0", "one/1", "one/2")
}

// testBroadcast: every instance of the service handles each event.
func testBroadcast(t *testing.T, uri string) {
	const src = "bcast_src"
	got := make(chan string, 100)
	opts := []events.Option{events.Type(events.Broadcast), events.UnreliableDelivery()}
	hyphatest.Run(t, uri, ticker("bcast", src, "i1", got, opts...))
	hyphatest.Run(t, uri, ticker("bcast", src, "i2", got, opts...))
	dispatchTicks(t, uri, src, 2)
	expectRuns(t, got, "i1/0", "i1/1", "i2/0", "i2/1")
}

func testEventContextData(t *testing.T, uri string) {
	seen := make(chan context.Context, 1)
	hyphatest.Run(t, uri, framework.Service("ctx_listener", func() handlers {
		return func(r *entrypoint.Registry) {
			events.Handle(r, "on_tick", "ctx_src", "tick", func(ctx context.Context, _ tick) error {
				seen <- ctx
				return nil
			})
		}
	}))
	ctx := contextdata.WithUserID(context.Background(), "u-7")
	ctx = contextdata.With(ctx, "tenant", "acme")
	if err := dispatcher(t, uri, "ctx_src").Dispatch(ctx, "tick", tick{}); err != nil {
		t.Fatal(err)
	}
	got := receive(t, seen, "the event")
	if contextdata.UserID(got) != "u-7" || contextdata.Get(got, "tenant") != "acme" {
		t.Errorf("the handler saw %v, want user_id u-7 and tenant acme", contextdata.From(got))
	}
	stack := contextdata.CallIDStack(got)
	if len(stack) != 2 || !strings.HasPrefix(stack[0], "ctx_src.dispatch.") || !strings.HasPrefix(stack[1], "ctx_listener.on_tick.") {
		t.Errorf("call-id stack %v, want the dispatch's id and the handler's", stack)
	}
}

// testReliableDelivery: an event dispatched while its handler's service is
// stopped waits in a reliable handler's queue, and is lost to an
// unreliable one, whose queue went with its last consumer.
func testReliableDelivery(t *testing.T, uri string) {
	const src = "reliable_src"
	got := make(chan string, 10)
	services := func() []framework.Option {
		return []framework.Option{
			ticker("reliable", src, "reliable", got),
			ticker("unreliable", src, "unreliable", got, events.UnreliableDelivery()),
		}
	}
	stopApp(t, hyphatest.Run(t, uri, services()...))
	dispatchTicks(t, uri, src, 1)
	hyphatest.Run(t, uri, services()...)
	expectRuns(t, got, "reliable/0")
}

// testEventAfterStop: an event whose handler is still running when
// GRACE_PERIOD is over goes back to its queue, and the next instance runs it.
func testEventAfterStop(t *testing.T, uri string) {
	started, causes, reruns := make(chan struct{}), make(chan error, 1), make(chan int, 1)
	var first atomic.Bool
	svc := framework.Service("slow_listener", func() handlers {
		return func(r *entrypoint.Registry) {
			events.Handle(r, "on_tick", "stop_src", "tick", func(ctx context.Context, in tick) error {
				if first.CompareAndSwap(false, true) {
					close(started)
					<-ctx.Done()
					causes <- context.Cause(ctx)
					return ctx.Err()
				}
				reruns <- in.N
				return nil
			})
		}
	})
	grace := config(map[string]any{"GRACE_PERIOD": 0.3})
	app := hyphatest.Run(t, uri, grace, svc)
	dispatchTicks(t, uri, "stop_src", 1)
	receive(t, started, "the handler starting")
	stopApp(t, app)
	if cause := receive(t, causes, "the handler's context ending"); !errors.Is(cause, entrypoint.ErrStopping) {
		t.Errorf("the handler's context ended with %v, want entrypoint.ErrStopping", cause)
	}
	hyphatest.Run(t, uri, grace, svc)
	if n := receive(t, reruns, "the event running again"); n != 0 {
		t.Errorf("the next instance ran event %d, want 0", n)
	}
}

// fastRetries retries failed events after 50 ms, then 100 ms.
func fastRetries(maxRetries int) framework.Option {
	return config(map[string]any{"EVENTS": map[string]any{
		"MAX_RETRIES": maxRetries,
		"RETRY_DELAY": map[string]any{"INITIAL": 0.05, "MULTIPLIER": 2, "MAX": 1},
	}})
}

// attempt is one run of a handler that fails.
type attempt struct {
	n         int
	messageID string
}

// failing is a service whose handler records each run and fails the first
// failures of them.
func failing(service, source string, failures int, runs chan<- attempt) framework.Option {
	return framework.Service(service, func() handlers {
		return func(r *entrypoint.Registry) {
			events.Handle(r, "on_tick", source, "tick", func(ctx context.Context, in tick) error {
				runs <- attempt{events.Attempt(ctx), events.MessageID(ctx)}
				if events.Attempt(ctx) <= failures {
					return errors.New("tick failed")
				}
				return nil
			}, events.RequeueOnError())
		}
	})
}

func testRetries(t *testing.T, uri string) {
	runs := make(chan attempt, 10)
	hyphatest.Run(t, uri, fastRetries(3), failing("retrier", "retry_src", 2, runs))
	dispatchTicks(t, uri, "retry_src", 1)
	first := receive(t, runs, "the first run")
	for want := 1; want <= 3; want++ {
		a := first
		if want > 1 {
			a = receive(t, runs, fmt.Sprintf("run %d", want))
		}
		if a.n != want || a.messageID != first.messageID || a.messageID == "" {
			t.Errorf("run %d: attempt %d, message id %q; want attempt %d, message id %q", want, a.n, a.messageID, want, first.messageID)
		}
	}
	quietFor(t, runs, 300*time.Millisecond, "a run after the handler succeeded")
}

func testDeadLetter(t *testing.T, uri string) {
	const service, src = "dead_letters", "dlq_src"
	runs := make(chan attempt, 10)
	hyphatest.Run(t, uri, fastRetries(2), failing(service, src, 99, runs))
	dispatchTicks(t, uri, src, 1)
	for want := 1; want <= 3; want++ {
		if a := receive(t, runs, fmt.Sprintf("run %d", want)); a.n != want {
			t.Errorf("run %d has attempt %d", want, a.n)
		}
	}
	quietFor(t, runs, 300*time.Millisecond, "a run after MAX_RETRIES 2")
	// An event whose payload does not decode goes there at once.
	if err := dispatcher(t, uri, src).Dispatch(context.Background(), "tick", "not a tick"); err != nil {
		t.Fatal(err)
	}
	queue := events.DeadLetterQueueName("evt-" + src + "-tick--" + service + ".on_tick")
	dead := map[string]transport.Delivery{}
	for _, d := range deadLetters(t, uri, queue, 2) {
		dead[string(d.Body)] = d
	}
	tests := []struct {
		body, attempt, error string
	}{
		{`{"n":0}`, "3", "tick failed"},
		{`"not a tick"`, "1", "tick"},
	}
	for _, tt := range tests {
		d, ok := dead[tt.body]
		if !ok {
			t.Errorf("no dead letter %s among %q", tt.body, slices.Collect(maps.Keys(dead)))
			continue
		}
		if got := fmt.Sprint(d.Headers[events.AttemptHeader]); got != tt.attempt {
			t.Errorf("dead letter %s: %s %s, want %s", tt.body, events.AttemptHeader, got, tt.attempt)
		}
		if got, _ := d.Headers[events.ErrorHeader].(string); !strings.Contains(got, tt.error) {
			t.Errorf("dead letter %s: %s %q, want it to mention %q", tt.body, events.ErrorHeader, got, tt.error)
		}
	}
}

// deadLetters reads n messages from queue through a connection of its own
// and acks them.
func deadLetters(t *testing.T, uri, queue string, n int) []transport.Delivery {
	t.Helper()
	ch := make(chan transport.Delivery, n)
	c, err := broker(t, uri).Consume(context.Background(), transport.ConsumeOptions{Queue: queue, Prefetch: n},
		func(d transport.Delivery) {
			if err := d.Ack(); err != nil {
				t.Error("ack:", err)
			}
			ch <- d
		})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := make([]transport.Delivery, n)
	for i := range out {
		out[i] = receive(t, ch, fmt.Sprintf("dead letter %d of %d in %s", i+1, n, queue))
	}
	for _, d := range out {
		var v any
		if err := json.Unmarshal(d.Body, &v); err != nil {
			t.Errorf("dead letter %q is not the event's JSON: %v", d.Body, err)
		}
	}
	return out
}

// broker dials a bare transport connection on uri, closed when the test ends.
func broker(t *testing.T, uri string) dial.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	b, err := dial.Dial(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
