package events_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
)

// touchyID panics when it decodes 666.
type touchyID int

func (t *touchyID) UnmarshalJSON(b []byte) error {
	if string(b) == "666" {
		panic("touchyID cannot take 666")
	}
	return json.Unmarshal(b, (*int)(t))
}

type touchyOrder struct {
	ID   touchyID `json:"id"`
	Item string   `json:"item"`
}

// TestHostileEvents: an event whose payload panics while decoding, whose
// headers are over their bounds, or whose failure quotes a huge input, goes
// to the dead-letter queue with a bounded x-hypha-error and all its headers;
// the handler keeps handling the next event.
func TestHostileEvents(t *testing.T) {
	const source, service = "orders_hostile", "mailer_hostile"
	handled := make(chan int, 16)
	handle(t, service, 1, func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", source, "order_created", func(ctx context.Context, o touchyOrder) error {
			if strings.HasPrefix(o.Item, "fail") {
				return fmt.Errorf("cannot ship %s", o.Item)
			}
			handled <- int(o.ID)
			return nil
		}, events.RequeueOnError())
	})
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	dlq := events.DeadLetterQueueName(fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service))
	send := func(headers amqp091.Table, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ch.PublishWithContext(ctx, events.ExchangeName(source), "order_created", false, false, amqp091.Publishing{
			ContentType: "application/json", DeliveryMode: amqp091.Persistent, Headers: headers, Body: []byte(body),
		}); err != nil {
			t.Fatal(err)
		}
	}
	deadLetter := func() amqp091.Delivery {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			msg, ok, err := ch.Get(dlq, true)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				return msg
			}
			if time.Now().After(deadline) {
				t.Fatal("nothing reached the dead-letter queue")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	next := func(id int) {
		t.Helper()
		send(nil, fmt.Sprintf(`{"id": %d, "item": "socks"}`, id))
		select {
		case got := <-handled:
			if got != id {
				t.Fatalf("handled %d, want %d", got, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the next event (%d) was not handled", id)
		}
	}
	junk := amqp091.Table{"nameko.user_id": "u-7"}
	for i := range 100 {
		junk[fmt.Sprintf("x-junk-%d", i)] = "j"
	}
	tooMany := amqp091.Table{}
	for i := range worker.MaxHeaders + 1 {
		tooMany[fmt.Sprintf("x-h%d", i)] = "v"
	}

	t.Run("payload decoding panics", func(t *testing.T) {
		send(nil, `{"id": 666, "item": "socks"}`)
		msg := deadLetter()
		if e, _ := msg.Headers[events.ErrorHeader].(string); !strings.Contains(e, "touchyID cannot take 666") || strings.Contains(e, "goroutine") {
			t.Fatalf("x-hypha-error = %q, want the panic's text and no stack", e)
		}
		next(1)
	})
	t.Run("too many headers", func(t *testing.T) {
		send(tooMany, `{"id": 2, "item": "socks"}`)
		msg := deadLetter()
		if e, _ := msg.Headers[events.ErrorHeader].(string); !strings.Contains(e, "over the limit") {
			t.Fatalf("x-hypha-error = %q", e)
		}
		if len(msg.Headers) != len(tooMany)+2 || msg.Headers["x-h0"] != "v" {
			t.Errorf("the dead letter kept %d headers, want the event's %d and attempt and error", len(msg.Headers), len(tooMany))
		}
		next(3)
	})
	t.Run("context data too large", func(t *testing.T) {
		send(amqp091.Table{"nameko.auth_token": strings.Repeat("t", contextdata.MaxSize)}, `{"id": 4, "item": "socks"}`)
		if e, _ := deadLetter().Headers[events.ErrorHeader].(string); !strings.Contains(e, "context data") {
			t.Fatalf("x-hypha-error = %q", e)
		}
		next(5)
	})
	t.Run("failure quoting a huge input", func(t *testing.T) {
		send(junk, fmt.Sprintf(`{"id": 6, "item": "fail%s"}`, strings.Repeat("x", 200<<10)))
		msg := deadLetter()
		e, _ := msg.Headers[events.ErrorHeader].(string)
		if !strings.HasPrefix(e, "cannot ship failxxx") || len(e) > 1024 {
			t.Fatalf("x-hypha-error has %d bytes (%.40q...), want the start of the error, at most 1024 bytes", len(e), e)
		}
		if msg.Headers["nameko.user_id"] != "u-7" || msg.Headers["x-junk-99"] != "j" {
			t.Errorf("dead letter headers %d: want every header of the event kept", len(msg.Headers))
		}
		if n, _ := msg.Headers[events.AttemptHeader].(int64); n != 2 {
			t.Errorf("attempt %v, want 2 (retried once)", msg.Headers[events.AttemptHeader])
		}
		next(7)
	})
}
