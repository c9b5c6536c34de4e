package memory_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/memory"
)

// newURI names a broker for t alone and resets it when t ends.
func newURI(t testing.TB) string {
	name := strings.ReplaceAll(t.Name(), "/", ".")
	t.Cleanup(func() { memory.Reset(name) })
	return "memory://" + name
}

// connect opens a connection closed when t ends.
func connect(t testing.TB, uri string) *memory.Broker {
	b, err := memory.Dial(context.Background(), uri, memory.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func declare(t testing.TB, b transport.Broker, q transport.Queue) {
	t.Helper()
	if err := b.DeclareQueue(context.Background(), q); err != nil {
		t.Fatal(err)
	}
}

func exchange(t testing.TB, b transport.Broker, name, kind string) {
	t.Helper()
	if err := b.DeclareExchange(context.Background(), transport.Exchange{Name: name, Kind: kind, Durable: true}); err != nil {
		t.Fatal(err)
	}
}

func publish(t testing.TB, b transport.Broker, p transport.Publishing) {
	t.Helper()
	if err := b.Publish(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func send(t testing.TB, b transport.Broker, queue, body string) {
	t.Helper()
	publish(t, b, transport.Publishing{RoutingKey: queue, Message: transport.Message{Body: []byte(body)}})
}

// consume starts a consumer whose deliveries arrive on the returned
// channel, unsettled; it is closed when t ends.
func consume(t testing.TB, b transport.Broker, queue string, prefetch int) (<-chan transport.Delivery, transport.Consumer) {
	t.Helper()
	ch := make(chan transport.Delivery, 100)
	c, err := b.Consume(context.Background(), transport.ConsumeOptions{Queue: queue, Prefetch: prefetch},
		func(d transport.Delivery) { ch <- d })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return ch, c
}

// recv returns the next delivery, failing t after two seconds.
func recv(t testing.TB, ch <-chan transport.Delivery) transport.Delivery {
	t.Helper()
	select {
	case d := <-ch:
		return d
	case <-time.After(2 * time.Second):
		t.Fatal("no delivery within 2s")
		return transport.Delivery{}
	}
}

// none fails t if a delivery arrives within d.
func none(t testing.TB, ch <-chan transport.Delivery, d time.Duration) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("unexpected delivery %q", got.Body)
	case <-time.After(d):
	}
}

func ack(t testing.TB, d transport.Delivery) {
	t.Helper()
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
}

// bodies receives n deliveries, acks them and returns their bodies.
func bodies(t testing.TB, ch <-chan transport.Delivery, n int) []string {
	t.Helper()
	var out []string
	for range n {
		d := recv(t, ch)
		ack(t, d)
		out = append(out, string(d.Body))
	}
	return out
}

func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}
