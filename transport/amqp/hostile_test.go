package amqp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp/internal/frame"
)

// watched is a connection consuming a fresh queue, counting reconnects.
type watched struct {
	b         *connection
	queue     string
	got       chan transport.Delivery
	restores  atomic.Int32
	malformed atomic.Int32
}

func watch(t *testing.T, queue string, opts Options) *watched {
	t.Helper()
	w := &watched{queue: queue, got: make(chan transport.Delivery, 16)}
	opts.OnRestore = func() { w.restores.Add(1) }
	b, err := Dial(context.Background(), testbroker.URI(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	w.b = b
	ctx := context.Background()
	if err := b.DeclareQueue(ctx, transport.Queue{Name: queue, AutoDelete: true}); err != nil {
		t.Fatal(err)
	}
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: queue, Prefetch: 4}, func(d transport.Delivery) {
		if d.Malformed != nil {
			w.malformed.Add(1)
			d.Nack(false) // as rpc and events settle it: never requeued
		} else {
			d.Ack()
		}
		w.got <- d
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return w
}

func (w *watched) next(t *testing.T) transport.Delivery {
	t.Helper()
	select {
	case d := <-w.got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
		return transport.Delivery{}
	}
}

// ordinary checks that an ordinary message still arrives on the same
// connection: nothing was lost on the way.
func (w *watched) ordinary(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.b.Publish(ctx, transport.Publishing{RoutingKey: w.queue, Message: transport.Message{
		Body: []byte("ordinary"), Headers: map[string]any{"k": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	d := w.next(t)
	if d.Malformed != nil || string(d.Body) != "ordinary" || d.Headers["k"] != "v" {
		t.Fatalf("ordinary message: %q %v %v", d.Body, d.Headers, d.Malformed)
	}
	if n := w.restores.Load(); n != 0 {
		t.Fatalf("the connection was lost %d times", n)
	}
}

// nearFrameMax pads a header to 4 bytes under frame_max, in the last 8
// bytes that amqp091-go refuses: the frame's payload is 14 fixed bytes,
// the type, reply-to and correlation id properties, and the table.
const nearFrameMax = defaultFrameSize - 4 - frame.FixedHeader - (1 + len("near frame_max")) - (1 + len("reply-here")) -
	(1 + len("corr")) - (4 + 1 + len("pad") + 5)

func TestHostileHeadersDoNotStopTheConsumer(t *testing.T) {
	const big = 3000000000
	deep := amqp091.Table{"leaf": "x"}
	for range 33 {
		deep = amqp091.Table{"n": deep}
	}
	many := amqp091.Table{}
	for i := range 8193 {
		many[string(rune('a'+i%26))+strings.Repeat("k", i/26%8)+string(rune(i))] = nil
	}
	tests := []struct {
		name     string
		headers  amqp091.Table
		edit     func([]byte) []byte
		malforms string         // part of the reason; empty: not malformed
		want     map[string]any // headers to find when not malformed
	}{
		{name: "L top level", headers: amqp091.Table{"nameko.user_id": int64(big)},
			edit: rawamqp.Flip(rawamqp.Int64Field(big), 'L'), want: map[string]any{"nameko.user_id": int64(big)}},
		{name: "L nested", headers: amqp091.Table{"t": amqp091.Table{"deadline": int64(big)}, "a": []any{int64(big)}},
			edit: rawamqp.Flip(rawamqp.Int64Field(big), 'L'),
			want: map[string]any{"t": map[string]any{"deadline": int64(big)}, "a": []any{int64(big)}}},
		{name: "8193 entries", headers: many, malforms: "over 8192 entries"},
		{name: "8193-entry array", headers: amqp091.Table{"a": make([]any, 8193)}, malforms: "over 8192 entries"},
		{name: "33 deep", headers: deep, malforms: "nested over 32 deep"},
		// RabbitMQ refuses unknown field types and truncated tables at
		// publish (it parses headers to route), so those are left to the
		// unit tests and the fuzz target. It passes this through:
		{name: "near frame_max", headers: amqp091.Table{"pad": strings.Repeat("x", nearFrameMax)},
			malforms: "do not fit the frame size 131072"},
	}
	w := watch(t, "hostile-headers", Options{})
	ch := rawamqp.Channel(t, testbroker.URI(t), func(p []byte) []byte {
		for _, tt := range tests {
			if tt.edit != nil && bytes.Contains(p, []byte(tt.name)) {
				return tt.edit(p)
			}
		}
		return p
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ch.Publish("", w.queue, false, false, amqp091.Publishing{
				Headers: tt.headers, Type: tt.name, ReplyTo: "reply-here", CorrelationId: "corr", Body: []byte("hostile")})
			if err != nil {
				t.Fatal(err)
			}
			d := w.next(t)
			if d.ReplyTo != "reply-here" || d.CorrelationID != "corr" {
				t.Errorf("properties lost: reply-to %q correlation id %q", d.ReplyTo, d.CorrelationID)
			}
			switch {
			case tt.malforms == "" && d.Malformed != nil:
				t.Errorf("malformed: %v", d.Malformed)
			case tt.malforms == "":
				for k, v := range tt.want {
					if got := d.Headers[k]; !equalValue(got, v) {
						t.Errorf("header %s = %#v, want %#v", k, got, v)
					}
				}
			case !errors.Is(d.Malformed, transport.ErrMalformed) || !strings.Contains(d.Malformed.Error(), tt.malforms):
				t.Errorf("Malformed = %v, want one saying %q", d.Malformed, tt.malforms)
			case len(d.Headers) != 0:
				t.Errorf("headers of a malformed message: %d", len(d.Headers))
			}
			if string(d.Body) != "hostile" {
				t.Errorf("body %q", d.Body)
			}
			w.ordinary(t)
		})
	}
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k := range x {
			if !equalValue(x[k], y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return a == b
}
