package events_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
	"github.com/hypha-go/hypha/transport/dial"
)

// orderHandler registers a handler of source's order_created events that
// reports each order's id on handled.
func orderHandler(source string, handled chan<- int) func(r *entrypoint.Registry) {
	return func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", source, "order_created", func(_ context.Context, o order) error {
			handled <- o.ID
			return nil
		})
	}
}

// nextHandled dispatches order id from source and waits for the handler.
func nextHandled(t *testing.T, source string, handled <-chan int, id int) {
	t.Helper()
	if err := dispatcher(t, source).Dispatch(context.Background(), "order_created", order{ID: id}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-handled:
		if got != id {
			t.Fatalf("handled %d, want %d", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("order %d was not handled", id)
	}
}

// readDeadLetter reads one message from queue through Hypha's transport,
// which reports headers it cannot read rather than fail.
func readDeadLetter(t *testing.T, queue string) transport.Delivery {
	t.Helper()
	b, err := dial.Dial(context.Background(), testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := make(chan transport.Delivery, 1)
	c, err := b.Consume(context.Background(), transport.ConsumeOptions{Queue: queue, Prefetch: 1}, func(d transport.Delivery) {
		_ = d.Ack()
		got <- d
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case d := <-got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatalf("nothing reached %s", queue)
		panic("unreachable")
	}
}

// TestUnreadableHeadersDeadLetteredWhole: an event whose headers the client
// library cannot read (a table of 8193 entries) reaches the dead-letter queue
// with those headers and its body, and the handler goes on.
func TestUnreadableHeadersDeadLetteredWhole(t *testing.T) {
	for _, queueType := range []string{amqp.QueueClassic, amqp.QueueQuorum} {
		t.Run(queueType, func(t *testing.T) { testUnreadableHeaders(t, queueType) })
	}
}

func testUnreadableHeaders(t *testing.T, queueType string) {
	source, service := "orders_unreadable_"+queueType, "mailer_unreadable"
	handled := make(chan int, 4)
	how := make(chan string, 4)
	cfg := events.ServerConfig{OnDeadLetter: func(_, _, h string) { how <- h }}
	if err := startLogged(t, service, []dial.Option{queueTypeOption(queueType)}, cfg, orderHandler(source, handled)); err != nil {
		t.Fatal(err)
	}
	headers := amqp091.Table{}
	for i := range 8193 {
		headers[fmt.Sprintf("h%d", i)] = int32(i)
	}
	ch := rawamqp.Channel(t, testbroker.URI(t), nil)
	body := `{"id": 1, "item": "unreadable"}`
	if err := ch.PublishWithContext(context.Background(), events.ExchangeName(source), "order_created", false, false,
		amqp091.Publishing{ContentType: "application/json", MessageId: "m-1", Headers: headers, Body: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	d := readDeadLetter(t, events.DeadLetterQueueName(fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service)))
	// Read again, the dead letter's headers are what made the event
	// unreadable: they travelled with it.
	if d.Malformed == nil || !strings.Contains(d.Malformed.Error(), "over 8192 entries") {
		t.Errorf("dead letter read with Malformed %v, want its 8193 headers refused again", d.Malformed)
	}
	if string(d.Body) != body || d.MessageID != "m-1" {
		t.Errorf("dead letter body %q message_id %q, want the event's", d.Body, d.MessageID)
	}
	if got := <-how; got != events.DeadLetterWhole {
		t.Errorf("OnDeadLetter how %q, want %q", got, events.DeadLetterWhole)
	}
	nextHandled(t, source, handled, 2)
}

// syncBuffer is a log sink tests can read while handlers write.
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

// startLogged starts the handlers of service with cfg on a connection of
// its own with opts, until the test ends.
func startLogged(t *testing.T, service string, opts []dial.Option, cfg events.ServerConfig, register func(r *entrypoint.Registry)) error {
	t.Helper()
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	r := entrypoint.NewRegistry(service)
	register(r)
	cfg.Service = service
	srv := events.NewServer(b, r, cfg)
	if err := srv.Start(ctx); err != nil {
		srv.Close()
		return err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	return nil
}

// declareAsNameko declares queue, bound to source's order_created events,
// as nameko (or a Hypha from before dead-letter arguments) does.
func declareAsNameko(t *testing.T, source, queue string) {
	t.Helper()
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(events.ExchangeName(source), "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, "order_created", events.ExchangeName(source), false, nil); err != nil {
		t.Fatal(err)
	}
}

// TestQueueWithoutDeadLetterExchange: a handler's queue that exists as
// nameko declares it is used as it is, with a warning that says what to do;
// an event it cannot hand over whole leaves a record in the dead-letter
// queue, and the handler goes on.
func TestQueueWithoutDeadLetterExchange(t *testing.T) {
	const source, service = "orders_legacy", "mailer_legacy"
	queue := fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service)
	declareAsNameko(t, source, queue)
	var log syncBuffer
	handled := make(chan int, 4)
	how := make(chan string, 4)
	cfg := events.ServerConfig{Logger: slog.New(slog.NewTextHandler(&log, nil)), OnDeadLetter: func(_, _, h string) { how <- h }}
	if err := startLogged(t, service, nil, cfg, orderHandler(source, handled)); err != nil {
		t.Fatalf("start on a queue nameko declared: %v", err)
	}
	if !strings.Contains(log.String(), "without a dead-letter exchange") || !strings.Contains(log.String(), "EVENTS.NAMEKO_QUEUES") {
		t.Errorf("no warning that says what to do; log:\n%s", log.String())
	}
	nextHandled(t, source, handled, 1)

	tooMany := amqp091.Table{}
	for i := range 8193 {
		tooMany[fmt.Sprintf("h%d", i)] = int32(i)
	}
	ch := rawamqp.Channel(t, testbroker.URI(t), nil)
	if err := ch.PublishWithContext(context.Background(), events.ExchangeName(source), "order_created", false, false,
		amqp091.Publishing{Headers: tooMany, Body: []byte(`{"id": 2}`)}); err != nil {
		t.Fatal(err)
	}
	d := readDeadLetter(t, events.DeadLetterQueueName(queue))
	if e, _ := d.Headers[events.ErrorHeader].(string); !strings.Contains(e, "no dead-letter exchange") || string(d.Body) != `{"id": 2}` {
		t.Errorf("dead letter %q with %s %q, want the body and an error that says why the headers are gone", d.Body, events.ErrorHeader, e)
	}
	if got := <-how; got != events.DeadLetterRecord {
		t.Errorf("OnDeadLetter how %q, want %q", got, events.DeadLetterRecord)
	}
	nextHandled(t, source, handled, 3)
}

// TestNamekoQueues: with NamekoQueues the handler's queue is declared as
// nameko declares it, so nameko can declare it too; on a queue declared with
// dead-letter arguments the start fails with an error that says what to do.
func TestNamekoQueues(t *testing.T) {
	const source = "orders_nameko"
	handled := make(chan int, 4)
	if err := startLogged(t, "mailer_nameko", nil, events.ServerConfig{NamekoQueues: true}, orderHandler(source, handled)); err != nil {
		t.Fatal(err)
	}
	declareAsNameko(t, source, "evt-orders_nameko-order_created--mailer_nameko.on_created")
	nextHandled(t, source, handled, 1)

	if err := startLogged(t, "mailer_dlx", nil, events.ServerConfig{}, orderHandler(source, handled)); err != nil {
		t.Fatal(err)
	}
	err := startLogged(t, "mailer_dlx", nil, events.ServerConfig{NamekoQueues: true}, orderHandler(source, handled))
	if !errors.Is(err, transport.ErrInequivalent) || !strings.Contains(err.Error(), "EVENTS.NAMEKO_QUEUES") {
		t.Fatalf("start with NamekoQueues on a queue with dead-letter arguments: %v, want an error naming EVENTS.NAMEKO_QUEUES", err)
	}
}

// queueTypeOption is the connection option of QUEUE_TYPE queueType,
// config's defaults otherwise.
func queueTypeOption(queueType string) dial.Option {
	s := config.DefaultSettings()
	s.QueueType = queueType
	return dial.Settings(s)
}
