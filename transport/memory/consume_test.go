package memory_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hypha-go/hypha/transport"
)

func TestPrefetchBoundsUnacked(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	for _, s := range []string{"1", "2", "3", "4", "5"} {
		send(t, b, "q", s)
	}
	ch, _ := consume(t, b, "q", 2)
	first, second := recv(t, ch), recv(t, ch)
	none(t, ch, 50*time.Millisecond)
	ack(t, first)
	if d := recv(t, ch); string(d.Body) != "3" {
		t.Fatalf("after one ack got %q, want 3", d.Body)
	}
	none(t, ch, 50*time.Millisecond)
	ack(t, second)
	recv(t, ch)
}

func TestRoundRobin(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	ch1, _ := consume(t, b, "q", 0)
	ch2, _ := consume(t, b, "q", 0)
	for _, s := range []string{"1", "2", "3", "4"} {
		send(t, b, "q", s)
	}
	if got := bodies(t, ch1, 2); !slices.Equal(got, []string{"1", "3"}) {
		t.Errorf("first consumer got %q", got)
	}
	if got := bodies(t, ch2, 2); !slices.Equal(got, []string{"2", "4"}) {
		t.Errorf("second consumer got %q", got)
	}
}

func TestRoundRobinSkipsFullConsumers(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	ch1, _ := consume(t, b, "q", 1)
	ch2, _ := consume(t, b, "q", 5)
	for _, s := range []string{"1", "2", "3", "4"} {
		send(t, b, "q", s)
	}
	recv(t, ch1) // not acked: the first consumer is full
	if got := bodies(t, ch2, 3); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Errorf("second consumer got %q", got)
	}
}

func TestSingleActiveConsumer(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q", Args: map[string]any{"x-single-active-consumer": true}})
	ch1, c1 := consume(t, b, "q", 1)
	ch2, _ := consume(t, b, "q", 1)
	send(t, b, "q", "1")
	send(t, b, "q", "2")
	recv(t, ch1)
	none(t, ch2, 50*time.Millisecond) // the first is full, yet the second waits
	c1.Close()                        // the second takes over, and "1" goes back to the queue
	got := map[string]bool{}
	for range 2 {
		d := recv(t, ch2)
		got[string(d.Body)] = d.Redelivered
		ack(t, d)
	}
	if redelivered, ok := got["1"]; !ok || !redelivered || len(got) != 2 {
		t.Fatalf("after failover got %v; want 1 (redelivered) and 2", got)
	}
}

func TestRedeliveredAfterNack(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	send(t, b, "q", "1")
	send(t, b, "q", "2")
	ch, _ := consume(t, b, "q", 1)
	d := recv(t, ch)
	if d.Redelivered {
		t.Fatal("first delivery marked redelivered")
	}
	if err := d.Nack(true); err != nil {
		t.Fatal(err)
	}
	d = recv(t, ch)
	if string(d.Body) != "1" || !d.Redelivered {
		t.Fatalf("got %q redelivered %v; want 1 again, redelivered, ahead of 2", d.Body, d.Redelivered)
	}
	ack(t, d)
	if d := recv(t, ch); string(d.Body) != "2" || d.Redelivered {
		t.Fatalf("got %q redelivered %v", d.Body, d.Redelivered)
	}
}

func TestSettleTwiceFails(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	send(t, b, "q", "1")
	ch, _ := consume(t, b, "q", 0)
	d := recv(t, ch)
	ack(t, d)
	wantErr(t, d.Ack(), "PRECONDITION_FAILED", "unknown delivery tag")
}

func TestCloseRequeuesUnsettled(t *testing.T) {
	uri := newURI(t)
	tests := []struct {
		name  string
		close func(transport.Consumer, transport.Broker)
	}{
		{"consumer closed", func(c transport.Consumer, _ transport.Broker) { c.Close() }},
		{"cancelled then closed", func(c transport.Consumer, _ transport.Broker) {
			_ = c.Cancel(context.Background())
			c.Close()
		}},
		{"connection closed", func(_ transport.Consumer, b transport.Broker) { b.Close() }},
	}
	other := connect(t, uri)
	declare(t, other, transport.Queue{Name: "q", Durable: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := connect(t, uri)
			send(t, b, "q", "1")
			send(t, b, "q", "2")
			ch, c := consume(t, b, "q", 0)
			d1, d2 := recv(t, ch), recv(t, ch)
			tt.close(c, b)
			select {
			case <-d1.Lost:
			default:
				t.Error("Lost not closed")
			}
			if err := d1.Ack(); !errors.Is(err, transport.ErrClosed) {
				t.Errorf("ack after close: %v", err)
			}
			ch2, _ := consume(t, other, "q", 0)
			for _, want := range []string{"1", "2"} {
				d := recv(t, ch2)
				if string(d.Body) != want || !d.Redelivered {
					t.Errorf("got %q redelivered %v, want %s redelivered", d.Body, d.Redelivered, want)
				}
				ack(t, d)
			}
			_ = d2
		})
	}
}

func TestCancelWaitsForHandler(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	entered, release := make(chan struct{}), make(chan struct{})
	var order []string
	c, err := b.Consume(context.Background(), transport.ConsumeOptions{Queue: "q"}, func(d transport.Delivery) {
		order = append(order, string(d.Body)) // one goroutine: no lock needed
		if string(d.Body) == "1" {
			close(entered)
			<-release
		}
		_ = d.Ack()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send(t, b, "q", "1")
	send(t, b, "q", "2")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.Cancel(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancel with a blocked handler: %v", err)
	}
	close(release)
	if err := c.Cancel(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []string{"1"}) {
		t.Fatalf("handled %q; want only 1: 2 was not handed over before the cancel", order)
	}
	ch, _ := consume(t, b, "q", 0)
	if d := recv(t, ch); string(d.Body) != "2" {
		t.Fatalf("got %q", d.Body)
	}
}

func TestHandlerInOrder(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	ch, _ := consume(t, b, "q", 0)
	var want []string
	for i := range 50 {
		s := string(rune('A' + i))
		want = append(want, s)
		send(t, b, "q", s)
	}
	if got := bodies(t, ch, 50); !slices.Equal(got, want) {
		t.Fatalf("out of order: %q", got)
	}
}
