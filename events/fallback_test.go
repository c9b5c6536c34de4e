package events_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport/dial"
)

// failingHandler registers a handler of source's order_created events that
// reports when each delivery began and fails it with why.
func failingHandler(source string, began chan<- time.Time, why string) func(r *entrypoint.Registry) {
	return func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", source, "order_created", func(context.Context, order) error {
			began <- time.Now()
			return errors.New(why)
		})
	}
}

// An event whose dead-letter copy the broker cannot take for now (its
// dead-letter queue is gone) goes back to its queue after a pause, rather
// than at once or never; once the queue is back, the copy goes out.
func TestCopyRefusedForNowRequeuesAfterAPause(t *testing.T) {
	const source, service = "orders_requeue", "mailer_requeue"
	queue := fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service)
	dlq := events.DeadLetterQueueName(queue)
	began := make(chan time.Time, 8)
	how := make(chan string, 4)
	var log syncBuffer
	cfg := events.ServerConfig{MaxRetries: 0, Logger: slog.New(slog.NewTextHandler(&log, nil)),
		OnDeadLetter: func(_, _, h string) { how <- h }}
	// Without the topology check, which would declare the queue again by
	// itself.
	if err := startLogged(t, service, []dial.Option{dial.TopologyCheck(-1)}, cfg, failingHandler(source, began, "no stock")); err != nil {
		t.Fatal(err)
	}
	ch := rawamqp.Channel(t, testbroker.URI(t), nil)
	if _, err := ch.QueueDelete(dlq, false, false, false); err != nil {
		t.Fatal(err)
	}
	if err := dispatcher(t, source).Dispatch(context.Background(), "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	first := next(t, began)
	again := next(t, began)
	// A lower bound only: a busy machine can only make the pause longer.
	if gap := again.Sub(first); gap < 2*time.Second {
		t.Fatalf("the event came again %s after its copy was refused, want after a pause of seconds", gap)
	}
	if !strings.Contains(log.String(), "goes back to its queue") {
		t.Errorf("no error saying the event goes back to its queue; log:\n%s", log.String())
	}
	select {
	case h := <-how:
		t.Fatalf("OnDeadLetter %q for a copy that did not go out", h)
	default:
	}
	if _, err := ch.QueueDeclare(dlq, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	d := readDeadLetter(t, dlq)
	if e, _ := d.Headers[events.ErrorHeader].(string); !strings.Contains(e, "no stock") {
		t.Errorf("dead letter with %s %q, want the handler's error", events.ErrorHeader, e)
	}
	if got := <-how; got != events.DeadLetterCopy {
		t.Errorf("OnDeadLetter how %q, want %q", got, events.DeadLetterCopy)
	}
}

// An event whose dead-letter copy the broker never could take (its headers
// fit a frame, but not with Hypha's added) is rejected, and the broker moves
// it whole, headers and body as they came, to the dead-letter queue.
func TestCopyThatNeverFitsMovesTheEventWhole(t *testing.T) {
	const source, service = "orders_whole", "mailer_whole"
	queue := fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service)
	began := make(chan time.Time, 8)
	how := make(chan string, 4)
	cfg := events.ServerConfig{MaxRetries: 0, Logger: slog.New(slog.DiscardHandler), OnDeadLetter: func(_, _, h string) { how <- h }}
	why := strings.Repeat("out of stock ", 200) // cut to the error header's bound
	if err := startLogged(t, service, nil, cfg, failingHandler(source, began, why)); err != nil {
		t.Fatal(err)
	}
	// RabbitMQ's default frame_max is 131072; the event's headers leave
	// less room than x-hypha-error takes.
	big := strings.Repeat("x", 131072-700)
	body := []byte(`{"id": 7}`)
	ch := rawamqp.Channel(t, testbroker.URI(t), nil)
	if err := ch.PublishWithContext(context.Background(), events.ExchangeName(source), "order_created", false, false,
		amqp091.Publishing{Headers: amqp091.Table{"big": big}, Body: body}); err != nil {
		t.Fatal(err)
	}
	next(t, began)
	d := readDeadLetter(t, events.DeadLetterQueueName(queue))
	if string(d.Body) != string(body) || d.Headers["big"] != big {
		t.Errorf("dead letter %q, big header kept: %v; want the event as it came", d.Body, d.Headers["big"] == big)
	}
	if _, ok := d.Headers["x-death"]; !ok {
		t.Errorf("dead letter without x-death: the broker did not move it")
	}
	if _, ok := d.Headers[events.ErrorHeader]; ok {
		t.Errorf("dead letter with %s: a copy went out", events.ErrorHeader)
	}
	if got := <-how; got != events.DeadLetterWhole {
		t.Errorf("OnDeadLetter how %q, want %q", got, events.DeadLetterWhole)
	}
}

// next waits for the next time on began.
func next(t *testing.T, began <-chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-began:
		return at
	case <-time.After(20 * time.Second):
		t.Fatal("the handler did not run")
		panic("unreachable")
	}
}
