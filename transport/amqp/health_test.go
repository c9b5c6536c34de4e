package amqp_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
)

// waitFor polls cond every 20 ms until it holds, failing t after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadyFollowsConnectionAndGivingUp(t *testing.T) {
	u, err := url.Parse(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	gaveUp := make(chan error, 1)
	b, err := amqp.Dial(context.Background(), u.String(), amqp.Options{
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Reconnect: transport.ReconnectPolicy{IntervalStart: 50 * time.Millisecond, IntervalMax: 200 * time.Millisecond, MaxElapsed: time.Second},
		OnGiveUp:  func(err error) { gaveUp <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	q := transport.Queue{Name: "ready-test", AutoDelete: true}
	if err := b.DeclareQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: q.Name, Prefetch: 1}, func(d transport.Delivery) { d.Ack() })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !b.Connected() || b.Ready() != nil {
		t.Fatalf("connected = %v, ready = %v; want true, nil", b.Connected(), b.Ready())
	}

	f.close() // the broker can no longer be reached
	waitFor(t, 10*time.Second, "still connected", func() bool { return !b.Connected() })
	if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("ready while disconnected = %v", err)
	}
	select {
	case err := <-gaveUp:
		if !strings.Contains(err.Error(), "giving up") || !strings.Contains(err.Error(), "MAX_ELAPSED 1s") {
			t.Fatalf("gave up with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never gave up")
	}
}

func TestReadyNamesAConsumerThatIsDown(t *testing.T) {
	b, err := amqp.Dial(context.Background(), testbroker.URI(t), amqp.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	q := transport.Queue{Name: "taken-from-us", Durable: true}
	if err := b.DeclareQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: q.Name, Prefetch: 1}, func(d transport.Delivery) { d.Ack() })
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Another connection deletes the queue and takes its name for an
	// exclusive queue: the consumer cannot consume again until it lets go.
	other, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := other.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(q.Name, false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "ready with its consumer down", func() bool { return b.Ready() != nil })
	if err := b.Ready(); !strings.Contains(err.Error(), `not consuming queue "taken-from-us"`) {
		t.Fatalf("ready = %v", err)
	}
	other.Close()
	waitFor(t, 15*time.Second, "the consumer never came back", func() bool { return b.Ready() == nil })
}
