package dial_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// TestReadQueue: on RabbitMQ and on the embedded broker alike, a queue
// reader takes messages in order, does not hand out again what it holds,
// and returns it all, in order, when it closes; InspectQueue counts the
// ready messages; a missing queue is transport.ErrNoQueue.
func TestReadQueue(t *testing.T) {
	for _, kind := range []string{"amqp", "memory"} {
		t.Run(kind, func(t *testing.T) {
			s := config.DefaultSettings()
			s.AMQPURI = testbroker.URI(t)
			if kind == "memory" {
				s.AMQPURI = "memory://read-queue"
				t.Cleanup(func() { memory.Reset("read-queue") })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			b, err := dial.Dial(ctx, s.AMQPURI, dial.Settings(s), dial.Name("read-queue"))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const q = "read-queue"
			if err := b.DeclareQueue(ctx, transport.Queue{Name: q}); err != nil {
				t.Fatal(err)
			}
			defer b.DeleteQueue(context.Background(), q)
			for i := range 3 {
				err := b.Publish(ctx, transport.Publishing{RoutingKey: q, Message: transport.Message{
					Body: []byte(fmt.Sprint(i)), Headers: map[string]any{"n": int64(i)}}})
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := b.InspectQueue(ctx, "no-such-queue"); !errors.Is(err, transport.ErrNoQueue) {
				t.Errorf("InspectQueue of a missing queue: %v, want ErrNoQueue", err)
			}
			if _, err := b.ReadQueue(ctx, "no-such-queue"); !errors.Is(err, transport.ErrNoQueue) {
				t.Errorf("ReadQueue of a missing queue: %v, want ErrNoQueue", err)
			}

			pass := func(settle func(transport.Delivery) error) []string {
				r, err := b.ReadQueue(ctx, q)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var got []string
				for {
					d, ok, err := r.Get(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						return got
					}
					got = append(got, fmt.Sprintf("%s:%v", d.Body, d.Headers["n"]))
					if err := settle(d); err != nil {
						t.Fatal(err)
					}
				}
			}
			hold := func(transport.Delivery) error { return nil }
			if got := fmt.Sprint(pass(hold)); got != "[0:0 1:1 2:2]" {
				t.Errorf("first pass got %s, want each message once, in order", got)
			}
			if st, err := b.InspectQueue(ctx, q); err != nil || st.Messages != 3 {
				t.Errorf("after the reader closed: %+v, %v; want the 3 messages back", st, err)
			}
			ackOne := func(d transport.Delivery) error {
				if string(d.Body) == "1" {
					return d.Ack()
				}
				return nil
			}
			if got := fmt.Sprint(pass(ackOne)); got != "[0:0 1:1 2:2]" {
				t.Errorf("second pass got %s, want the messages back in their places", got)
			}
			if got := fmt.Sprint(pass(hold)); got != "[0:0 2:2]" {
				t.Errorf("third pass got %s, want the acked message gone", got)
			}
		})
	}
}
