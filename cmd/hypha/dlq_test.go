package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// openBroker is a connection to the test's vhost, closed when t ends.
func openBroker(t *testing.T) dial.Broker {
	t.Helper()
	s := config.DefaultSettings()
	s.AMQPURI = testbroker.URI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := dial.Dial(ctx, s.AMQPURI, dial.Settings(s), dial.Name("dlq-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// TestDLQHostileLetters: dead letters with a py-amqp int64 header ('L', as
// nameko sends) or 8193 headers, which amqp091-go refuses by closing the
// connection, are listed, shown and replayed; replay republishes body and
// headers exactly as they were, but the x-hypha-* ones, and leaves what it
// cannot republish whole where it is.
func TestDLQHostileLetters(t *testing.T) {
	const queue, dlq = "hostile", "hostile.dlq"
	b := openBroker(t)
	ctx := context.Background()
	for _, q := range []string{queue, dlq} {
		if err := b.DeclareQueue(ctx, transport.Queue{Name: q, Durable: true}); err != nil {
			t.Fatal(err)
		}
	}
	const big = int64(1) << 40
	wide := amqp091.Table{}
	for i := range 8193 {
		wide[fmt.Sprintf("%05d", i)] = nil
	}
	kept := amqp091.Table{ // every type a peer may send, and a py-amqp 'L'
		"nameko.big": big, "s": "x", "b": []byte{0, 0xff}, "t": true, "i32": int32(-7), "f64": 1.5,
		"ts": time.Unix(1700000000, 0), "a": []any{"x", int32(1), amqp091.Table{"k": "v"}}, "tbl": amqp091.Table{"n": int64(-1)},
		"x-death": []any{amqp091.Table{"queue": "elsewhere", "count": int64(1)}},
	}
	withRetries := maps.Clone(kept)
	withRetries[events.AttemptHeader], withRetries[events.ErrorHeader] = int64(3), "boom"
	letters := []amqp091.Publishing{
		{MessageId: "int64", ContentType: "application/json", Headers: withRetries, Body: []byte(`{"id":  "L", "html": "<&>"}`)},
		{MessageId: "wide", Headers: wide, Body: []byte(`{"id": "wide"}`)},
		{MessageId: "binary", Headers: amqp091.Table{"s": "y"}, Body: []byte{0xff, 0xfe, 0}},
	}
	ch := rawamqp.Channel(t, testbroker.URI(t), rawamqp.Flip(rawamqp.Int64Field(big), 'L'))
	for _, l := range letters {
		l.DeliveryMode = amqp091.Persistent
		if err := ch.PublishWithContext(ctx, "", dlq, true, false, l); err != nil {
			t.Fatal(err)
		}
	}
	waitMessages(t, b, dlq, 3)

	broker := []string{"--broker", testbroker.URI(t)}
	r := runHere(append(broker, "dlq", "list", dlq), "")
	r.want(t, exitOK, "int64", "wide", "binary", "boom")
	r = runHere(append(broker, "dlq", "show", dlq), "")
	r.want(t, exitOK, `"body":"{\"id\":  \"L\", \"html\": \"<&>\"}"`, `"nameko.big":1099511627776`,
		`"b":{"base64":"AP8="}`, `"malformed":"hypha: malformed message: `, `"body_base64":"//4A"`)
	if strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("show printed %d lines, want 3:\n%s", strings.Count(r.stdout, "\n"), r.stdout)
	}
	r = runHere(append(broker, "dlq", "replay", dlq), "")
	r.want(t, exitOK)
	r.wantErr(t, "replayed 2 event(s) from hostile.dlq to hostile; skipped 1, failed 0", "skipping event 1 (message id wide)")

	// What reached the handler's queue, read as any AMQP client reads it.
	raw := rawamqp.Channel(t, testbroker.URI(t), nil)
	for _, want := range []amqp091.Publishing{letters[0], letters[2]} {
		got, ok, err := raw.Get(queue, true)
		if err != nil || !ok {
			t.Fatalf("getting the replayed %s: %v, %v", want.MessageId, ok, err)
		}
		wantHeaders := want.Headers
		if want.MessageId == "int64" {
			wantHeaders = kept
		}
		if got.MessageId != want.MessageId || string(got.Body) != string(want.Body) || !reflect.DeepEqual(got.Headers, wantHeaders) ||
			got.ContentType != want.ContentType {
			t.Errorf("replayed %s as\n%q %v %s\nwant\n%q %v %s", want.MessageId, got.Body, got.Headers, got.ContentType,
				want.Body, wantHeaders, want.ContentType)
		}
	}
	r = runHere(append(broker, "dlq", "list", dlq), "")
	r.want(t, exitOK, "wide")
	if strings.Contains(r.stdout, "int64") || strings.Contains(r.stdout, "binary") {
		t.Errorf("replayed events are still on %s:\n%s", dlq, r.stdout)
	}
}

// TestDLQReplayTakesASnapshot: a handler that fails again dead-letters the
// replayed events straight back; replay replays each of the events it found
// once, and ends.
func TestDLQReplayTakesASnapshot(t *testing.T) {
	const source, service, handler = "refill_src", "refill", "on_thing"
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 1, "EVENTS": map[string]any{"MAX_RETRIES": 0}}),
		framework.Logger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		framework.Service(service, func() *refill { return &refill{} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Stop(context.Background())
	d, err := hyphatest.Dispatcher(t, ctx, testbroker.URI(t), events.DispatcherConfig{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := d.Dispatch(ctx, "thing", map[string]int{"n": i}); err != nil {
			t.Fatal(err)
		}
	}
	queue := fmt.Sprintf("evt-%s-thing--%s.%s", source, service, handler)
	dlq := events.DeadLetterQueueName(queue)
	b := openBroker(t)
	waitMessages(t, b, dlq, 5)

	r := runHere([]string{"--broker", testbroker.URI(t), "dlq", "replay", dlq}, "")
	r.want(t, exitOK)
	r.wantErr(t, "replayed 5 event(s) from "+dlq+" to "+queue+"; skipped 0, failed 0")
	waitMessages(t, b, dlq, 5) // the handler failed again: they are back, for the next run
}

// refill is a service whose event handler always fails.
type refill struct{}

func (s *refill) Register(r *entrypoint.Registry) {
	events.Handle(r, "on_thing", "refill_src", "thing", func(context.Context, map[string]int) error {
		return errors.New("still broken")
	})
}

// waitMessages waits until queue holds n messages ready.
func waitMessages(t *testing.T, b dial.Broker, queue string, n int) {
	t.Helper()
	var st transport.QueueState
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if st, err = b.InspectQueue(context.Background(), queue); err == nil && st.Messages == n {
			return
		}
	}
	t.Fatalf("%s holds %d messages (%v), want %d", queue, st.Messages, err, n)
}
