package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport/dial"
)

// TestHandlerHasADeadline: a handler's context ends after HandlerTimeout;
// a handler that runs past it has failed, and its event is dead-lettered.
func TestHandlerHasADeadline(t *testing.T) {
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	deadlines := make(chan time.Duration, 1)
	r := entrypoint.NewRegistry("mailer_deadline")
	events.Handle(r, "on_created", "orders_deadline", "order_created", func(ctx context.Context, o order) error {
		d, _ := ctx.Deadline()
		deadlines <- time.Until(d)
		<-ctx.Done()
		return ctx.Err()
	})
	srv := events.NewServer(b, r, events.ServerConfig{Service: "mailer_deadline", HandlerTimeout: 300 * time.Millisecond})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Stop(sctx)
	}()
	if err := dispatcher(t, "orders_deadline").Dispatch(ctx, "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case left := <-deadlines:
		if left <= 0 || left > 300*time.Millisecond {
			t.Fatalf("the handler's deadline is %v away, want within HandlerTimeout", left)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event never arrived")
	}
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	dlq := events.DeadLetterQueueName("evt-orders_deadline-order_created--mailer_deadline.on_created")
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, ok, err := ch.Get(dlq, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if e, _ := msg.Headers[events.ErrorHeader].(string); !strings.Contains(e, "deadline exceeded") {
				t.Fatalf("x-hypha-error = %q", e)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the event that ran past its deadline was not dead-lettered")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
