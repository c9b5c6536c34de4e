package behaviour

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"

	hyphaconfig "github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

var deadLetterCases = []behaviourCase{
	{name: "events over MAX_MESSAGE_SIZE dead-lettered whole", run: testOversizeDeadLetter},
	{name: "events dead-lettered with every header", run: testDeadLetterKeepsHeaders},
	{name: "events on a queue nameko declared", run: testNamekoDeclaredQueue},
}

// The service reads at most serviceLimit bytes of a body; the test's own
// connections, twice as much.
const (
	serviceLimit = 8 << 20
	testLimit    = 2 * serviceLimit
)

// wideBroker dials a bare connection on uri that publishes and reads bodies
// up to testLimit, closed when the test ends.
func wideBroker(t *testing.T, uri string) dial.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s := hyphaconfig.DefaultSettings()
	s.MaxMessageSize = testLimit
	b, err := dial.Dial(ctx, uri, dial.Settings(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// eventHeaders are headers of every kind both brokers carry as they are.
func eventHeaders() map[string]any {
	return map[string]any{
		"nameko.user_id": "u-9",
		"x-custom":       "keep me",
		"x-count":        int64(1) << 40,
		"x-flag":         true,
		"x-ratio":        0.25,
		"x-list":         []any{"a", int64(2)},
		"x-table":        map[string]any{"k": "v"},
	}
}

// publishEvent publishes a tick event from source as another client
// would, with body and headers as given, through b.
func publishEvent(t *testing.T, b dial.Broker, source, id string, body []byte, headers map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := b.Publish(ctx, transport.Publishing{Exchange: events.ExchangeName(source), RoutingKey: "tick", Message: transport.Message{
		Body: body, ContentType: "application/json", MessageID: id, Persistent: true, Headers: headers,
	}})
	if err != nil {
		t.Fatal(err)
	}
}

// takeDeadLetter reads one message from queue through b and acks it.
func takeDeadLetter(t *testing.T, b dial.Broker, queue string) transport.Delivery {
	t.Helper()
	ch := make(chan transport.Delivery, 1)
	c, err := b.Consume(context.Background(), transport.ConsumeOptions{Queue: queue, Prefetch: 1}, func(d transport.Delivery) {
		if err := d.Ack(); err != nil {
			t.Error("ack:", err)
		}
		ch <- d
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return receive(t, ch, "a dead letter in "+queue)
}

// checkHeaders fails t for each of want's headers that got lacks or holds
// otherwise.
func checkHeaders(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("dead letter header %s = %#v, want %#v", k, got[k], v)
		}
	}
}

// testOversizeDeadLetter: an event over the service's MAX_MESSAGE_SIZE
// reaches the dead-letter queue whole, body byte for byte and headers, and
// the service goes on handling events.
func testOversizeDeadLetter(t *testing.T, uri string) {
	const service, src = "big_letters", "big_src"
	got := make(chan string, 10)
	hyphatest.Run(t, uri, config(map[string]any{"MAX_MESSAGE_SIZE": serviceLimit}), ticker(service, src, "big", got))
	b := wideBroker(t, uri)
	body := append([]byte(`{"n": 1, "pad": "`), bytes.Repeat([]byte("x"), 9<<20)...)
	body = append(body, `"}`...)
	publishEvent(t, b, src, "big-1", body, eventHeaders())

	d := takeDeadLetter(t, b, events.DeadLetterQueueName("evt-"+src+"-tick--"+service+".on_tick"))
	if d.Malformed != nil {
		t.Fatalf("dead letter read as malformed: %v", d.Malformed)
	}
	if sha256.Sum256(d.Body) != sha256.Sum256(body) {
		t.Errorf("dead letter body of %d bytes differs from the event's %d bytes", len(d.Body), len(body))
	}
	checkHeaders(t, d.Headers, eventHeaders())
	if d.MessageID != "big-1" || d.ContentType != "application/json" {
		t.Errorf("dead letter message_id %q content_type %q, want the event's", d.MessageID, d.ContentType)
	}
	dispatchTicks(t, uri, src, 1)
	expectRuns(t, got, "big/0")
}

// failingAll is a service whose handler of source's ticks always fails,
// with RequeueOnError.
func failingAll(service, source string) framework.Option {
	return framework.Service(service, func() handlers {
		return func(r *entrypoint.Registry) {
			events.Handle(r, "on_tick", source, "tick", func(context.Context, tick) error {
				return errors.New("tick failed")
			}, events.RequeueOnError())
		}
	})
}

// testDeadLetterKeepsHeaders: an event retried until MAX_RETRIES, and one
// whose payload does not decode, reach the dead-letter queue with their
// body and every header they were sent with, plus x-hypha-attempt and
// x-hypha-error.
func testDeadLetterKeepsHeaders(t *testing.T, uri string) {
	const service, src = "header_letters", "header_src"
	hyphatest.Run(t, uri, fastRetries(2), failingAll(service, src))
	b := wideBroker(t, uri)
	dlq := events.DeadLetterQueueName("evt-" + src + "-tick--" + service + ".on_tick")
	for _, tt := range []struct {
		body, attempt, error string
	}{
		{`{"n": 1}`, "3", "tick failed"},
		{`"not a tick"`, "1", "does not decode"},
	} {
		publishEvent(t, b, src, "id-"+tt.attempt, []byte(tt.body), eventHeaders())
		d := takeDeadLetter(t, b, dlq)
		if string(d.Body) != tt.body {
			t.Errorf("dead letter body %q, want %q", d.Body, tt.body)
		}
		checkHeaders(t, d.Headers, eventHeaders())
		if got := fmt.Sprint(d.Headers[events.AttemptHeader]); got != tt.attempt {
			t.Errorf("dead letter %s: %s %s, want %s", tt.body, events.AttemptHeader, got, tt.attempt)
		}
		if e, _ := d.Headers[events.ErrorHeader].(string); !bytes.Contains([]byte(e), []byte(tt.error)) {
			t.Errorf("dead letter %s: %s %q, want it to mention %q", tt.body, events.ErrorHeader, e, tt.error)
		}
	}
}

// testNamekoDeclaredQueue: a handler's queue that exists as nameko declares
// it, without a dead-letter exchange, does not stop the service: it is used
// as it is, with a warning that says what to do.
func testNamekoDeclaredQueue(t *testing.T, uri string) {
	const service, src = "nameko_first", "nameko_src"
	b := broker(t, uri)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := b.DeclareExchange(ctx, transport.Exchange{Name: events.ExchangeName(src), Kind: transport.Topic, Durable: true}); err != nil {
		t.Fatal(err)
	}
	queue := transport.Queue{Name: "evt-" + src + "-tick--" + service + ".on_tick", Durable: true,
		Bindings: []transport.Binding{{Exchange: events.ExchangeName(src), RoutingKey: "tick"}}}
	if err := b.DeclareQueue(ctx, queue); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	var log syncBuffer
	hyphatest.Run(t, uri, framework.Logger(slog.New(slog.NewTextHandler(&log, nil))), ticker(service, src, "first", got))
	if !strings.Contains(log.String(), "without a dead-letter exchange") || !strings.Contains(log.String(), queue.Name) {
		t.Errorf("no warning naming the queue without a dead-letter exchange; log:\n%s", log.String())
	}
	dispatchTicks(t, uri, src, 1)
	expectRuns(t, got, "first/0")
}

// syncBuffer is a log sink a test reads while the app writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
