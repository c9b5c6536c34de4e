package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/memory"
)

func TestDeclarationConflicts(t *testing.T) {
	ex := transport.Exchange{Name: "ex", Kind: transport.Topic, Durable: true}
	q := transport.Queue{Name: "q", Durable: true, Args: map[string]any{"x-message-ttl": int32(100), "x-other": 1}}
	tests := []struct {
		name string
		do   func(transport.Broker) error
		want string // "" for no error
	}{
		{"same exchange", func(b transport.Broker) error { return b.DeclareExchange(context.Background(), ex) }, ""},
		{"exchange kind", func(b transport.Broker) error {
			e := ex
			e.Kind = transport.Direct
			return b.DeclareExchange(context.Background(), e)
		}, "inequivalent arg 'type'"},
		{"exchange durable", func(b transport.Broker) error {
			e := ex
			e.Durable = false
			return b.DeclareExchange(context.Background(), e)
		}, "inequivalent arg 'durable'"},
		{"exchange auto-delete", func(b transport.Broker) error {
			e := ex
			e.AutoDelete = true
			return b.DeclareExchange(context.Background(), e)
		}, "inequivalent arg 'auto_delete'"},
		{"passive, of another kind", func(b transport.Broker) error {
			return b.DeclareExchange(context.Background(), transport.Exchange{Name: "ex", Kind: transport.Fanout, Passive: true})
		}, ""},
		{"passive, missing, then of another kind", func(b transport.Broker) error {
			passive := transport.Exchange{Name: "ex2", Kind: transport.Topic, Durable: true, Passive: true}
			if err := b.DeclareExchange(context.Background(), passive); err != nil {
				return err
			}
			return b.DeclareExchange(context.Background(), transport.Exchange{Name: "ex2", Kind: transport.Fanout, Durable: true})
		}, "inequivalent arg 'type'"},
		{"same queue", func(b transport.Broker) error { return b.DeclareQueue(context.Background(), q) }, ""},
		{"same queue, ttl as int64, unchecked arg changed", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q", Durable: true,
				Args: map[string]any{"x-message-ttl": int64(100), "x-other": 2}})
		}, ""},
		{"queue durable", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q", Args: q.Args})
		}, "inequivalent arg 'durable'"},
		{"queue auto-delete", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q", Durable: true, AutoDelete: true, Args: q.Args})
		}, "inequivalent arg 'auto_delete'"},
		{"queue ttl", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q", Durable: true, Args: map[string]any{"x-message-ttl": 5}})
		}, "inequivalent arg 'x-message-ttl'"},
		{"queue ttl missing", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q", Durable: true})
		}, "inequivalent arg 'x-message-ttl'"},
		{"bad ttl", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q2", Args: map[string]any{"x-message-ttl": "soon"}})
		}, "invalid arg 'x-message-ttl'"},
		{"unsupported arg", func(b transport.Broker) error {
			return b.DeclareQueue(context.Background(), transport.Queue{Name: "q3", Args: map[string]any{"x-max-length": 10}})
		}, "not supported"},
		{"unsupported kind", func(b transport.Broker) error {
			return b.DeclareExchange(context.Background(), transport.Exchange{Name: "h", Kind: "headers"})
		}, "COMMAND_INVALID"},
	}
	b := connect(t, newURI(t))
	if err := b.DeclareExchange(context.Background(), ex); err != nil {
		t.Fatal(err)
	}
	declare(t, b, q)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(b)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, tt.want)
			if tt.want == "inequivalent arg 'durable'" || tt.want == "inequivalent arg 'type'" {
				wantErr(t, err, "PRECONDITION_FAILED")
			}
		})
	}
}

func TestMessagesAreCopies(t *testing.T) {
	b := connect(t, newURI(t))
	exchange(t, b, "fan", transport.Fanout)
	for _, q := range []string{"q1", "q2"} {
		declare(t, b, transport.Queue{Name: q, Bindings: []transport.Binding{{Exchange: "fan"}}})
	}
	body := []byte("body")
	list := []any{"a"}
	headers := map[string]any{"list": list, "map": map[string]any{"k": "v"}, "bytes": []byte("x")}
	publish(t, b, transport.Publishing{Exchange: "fan", Message: transport.Message{Body: body, Headers: headers}})
	body[0], list[0] = 'B', "changed"
	headers["new"] = true
	ch1, _ := consume(t, b, "q1", 0)
	ch2, _ := consume(t, b, "q2", 0)
	d1 := recv(t, ch1)
	d1.Body[1] = 'O'
	d1.Headers["list"].([]any)[0] = "also changed"
	d1.Headers["map"].(map[string]any)["k"] = "w"
	d1.Headers["bytes"].([]byte)[0] = 'y'
	d2 := recv(t, ch2)
	if string(d2.Body) != "body" || d2.Headers["list"].([]any)[0] != "a" || d2.Headers["map"].(map[string]any)["k"] != "v" ||
		!bytes.Equal(d2.Headers["bytes"].([]byte), []byte("x")) || d2.Headers["new"] != nil {
		t.Fatalf("a delivery shares memory with the publisher or another delivery: %q %v", d2.Body, d2.Headers)
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	ch, _ := consume(t, b, "q", 0)
	for name, v := range headerCases {
		t.Run(name, func(t *testing.T) {
			want, err := memory.NormalizeHeaders(map[string]any{"v": v})
			if err != nil {
				t.Fatal(err)
			}
			publish(t, b, transport.Publishing{RoutingKey: "q", Message: transport.Message{Headers: map[string]any{"v": v}}})
			d := recv(t, ch)
			ack(t, d)
			if got := fmt.Sprintf("%#v", d.Headers); got != fmt.Sprintf("%#v", want) {
				t.Errorf("got %s, want %s", got, fmt.Sprintf("%#v", want))
			}
		})
	}
	err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Message: transport.Message{Headers: map[string]any{"bad": []int{1}}}})
	wantErr(t, err, `header "bad"`, "[]int")
}

func TestNormalizeHeaders(t *testing.T) {
	tests := []struct {
		in, want any
	}{
		{42, int32(42)},
		{int64(42), int64(42)},
		{1 << 40, int64(1 << 40)},
		{uint(3), int64(3)},
		{uint16(3), uint16(3)},
		{[]string{"a"}, []any{"a"}},
		{[]any{7}, []any{int32(7)}},
		{map[string]any{"n": 8}, map[string]any{"n": int32(8)}},
		{map[string]any{}, map[string]any(nil)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T", tt.in), func(t *testing.T) {
			got, err := memory.NormalizeHeaders(map[string]any{"h": tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%#v", got["h"]) != fmt.Sprintf("%#v", tt.want) {
				t.Errorf("got %#v, want %#v", got["h"], tt.want)
			}
		})
	}
}

// TestBodyOverTheConsumersLimit: a message its publisher could send but
// over the consuming connection's MaxMessageSize arrives malformed, its body
// dropped and its headers kept, as through transport/amqp.
func TestBodyOverTheConsumersLimit(t *testing.T) {
	uri := newURI(t)
	pub := connect(t, uri)
	sub, err := memory.New(uri, memory.Options{MaxMessageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Close() })
	declare(t, pub, transport.Queue{Name: "q"})
	publish(t, pub, transport.Publishing{RoutingKey: "q", Message: transport.Message{
		Body: []byte("12345"), Headers: map[string]any{"h": "v"}}})
	send(t, pub, "q", "1234")
	ch, _ := consume(t, sub, "q", 10)
	d := recv(t, ch)
	if !errors.Is(d.Malformed, transport.ErrMalformed) || len(d.Body) != 0 || d.Headers["h"] != "v" ||
		!strings.Contains(d.Malformed.Error(), "message body of 5 bytes is over MAX_MESSAGE_SIZE 4") {
		t.Fatalf("over the limit: malformed %v, body %q, headers %v", d.Malformed, d.Body, d.Headers)
	}
	ack(t, d)
	if d := recv(t, ch); d.Malformed != nil || string(d.Body) != "1234" {
		t.Fatalf("at the limit: malformed %v, body %q", d.Malformed, d.Body)
	}
}

func TestLimitsAndClose(t *testing.T) {
	uri := newURI(t)
	b, err := memory.New(uri, memory.Options{MaxMessageSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	declare(t, b, transport.Queue{Name: "q"})
	err = b.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("12345")}})
	if !errors.Is(err, transport.ErrTooLarge) {
		t.Fatalf("over the size limit: %v", err)
	}
	if !b.Connected() || b.Ready() != nil || b.Connect(context.Background()) != nil {
		t.Fatal("a new connection is not up")
	}
	b.Close()
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "q"}); !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("publish after close: %v", err)
	}
	if b.Connected() || b.Ready() == nil || !errors.Is(b.Connect(context.Background()), transport.ErrClosed) {
		t.Fatal("a closed connection looks up")
	}
	if _, err := memory.New("amqp://localhost", memory.Options{}); err == nil {
		t.Fatal("New took an amqp URI")
	}
}

func TestNamedBrokersAreSeparateAndReset(t *testing.T) {
	one, two := connect(t, newURI(t)+".one"), connect(t, newURI(t)+".two")
	declare(t, one, transport.Queue{Name: "q", Durable: true})
	if err := two.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Mandatory: true}); err != transport.ErrUnroutable {
		t.Fatalf("a queue of one broker is seen in another: %v", err)
	}
	again := connect(t, newURI(t)+".one")
	send(t, again, "q", "kept") // the queue outlives nothing but Reset
	name := t.Name() + ".one"
	memory.Reset(name)
	if one.Connected() {
		t.Fatal("Reset left a connection open")
	}
	fresh := connect(t, "memory://"+name)
	if err := fresh.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Mandatory: true}); err != transport.ErrUnroutable {
		t.Fatalf("a queue outlived Reset: %v", err)
	}
}

func BenchmarkPublishConsume(b *testing.B) {
	conn := connect(b, newURI(b))
	declare(b, conn, transport.Queue{Name: "q"})
	got := make(chan struct{}, 1)
	c, err := conn.Consume(context.Background(), transport.ConsumeOptions{Queue: "q", Prefetch: 1}, func(d transport.Delivery) {
		_ = d.Ack()
		got <- struct{}{}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := transport.Publishing{RoutingKey: "q", Message: transport.Message{
		Body: make([]byte, 256), ContentType: "application/json", Headers: map[string]any{"nameko.call_id_stack": []string{"a.b.c"}}}}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := conn.Publish(ctx, p); err != nil {
			b.Fatal(err)
		}
		<-got
	}
}
