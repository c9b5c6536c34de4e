package memory_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/hypha-go/hypha/transport"
)

func TestRouting(t *testing.T) {
	tests := []struct {
		kind, binding, key string
		routed             bool
	}{
		{transport.Topic, "a.b", "a.b", true},
		{transport.Topic, "a.b", "a.c", false},
		{transport.Topic, "a.*", "a.b", true},
		{transport.Topic, "a.*", "a", false},
		{transport.Topic, "a.*", "a.b.c", false},
		{transport.Topic, "*", "", false},
		{transport.Topic, "*", "a", true},
		{transport.Topic, "a.*", "a.", true}, // an empty word is a word
		{transport.Topic, "#", "", true},
		{transport.Topic, "#", "a.b.c", true},
		{transport.Topic, "a.#", "a", true},
		{transport.Topic, "a.#", "a.b.c", true},
		{transport.Topic, "a.#", "b.a", false},
		{transport.Topic, "#.c", "c", true},
		{transport.Topic, "#.c", "a.b.c", true},
		{transport.Topic, "#.c", "a.c.b", false},
		{transport.Topic, "a.#.c", "a.c", true},
		{transport.Topic, "a.#.c", "a.b.b.c", true},
		{transport.Topic, "a.#.c", "a.b.b.d", false},
		{transport.Topic, "*.#", "", false},
		{transport.Topic, "*.#", "a", true},
		{transport.Topic, "#.#", "a.b", true},
		{transport.Topic, "a.*.#.d", "a.b.d", true},
		{transport.Topic, "a.*.#.d", "a.d", false},
		{transport.Topic, "", "", true},
		{transport.Topic, "", "a", false},
		{transport.Topic, "calc.*", "calc.add", true},
		{transport.Direct, "a.*", "a.b", false},
		{transport.Direct, "a.b", "a.b", true},
		{transport.Fanout, "ignored", "anything", true},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.binding+"/"+tt.key, func(t *testing.T) {
			b := connect(t, newURI(t))
			exchange(t, b, "ex", tt.kind)
			declare(t, b, transport.Queue{Name: "q", Bindings: []transport.Binding{{Exchange: "ex", RoutingKey: tt.binding}}})
			err := b.Publish(context.Background(), transport.Publishing{Exchange: "ex", RoutingKey: tt.key, Mandatory: true})
			if routed := err == nil; routed != tt.routed {
				t.Fatalf("routed %v (%v), want %v", routed, err, tt.routed)
			}
		})
	}
}

func TestRoutingToSeveralQueuesOnce(t *testing.T) {
	b := connect(t, newURI(t))
	exchange(t, b, "ex", transport.Topic)
	// Two bindings of one queue that both match deliver once.
	declare(t, b, transport.Queue{Name: "q1", Bindings: []transport.Binding{{Exchange: "ex", RoutingKey: "a.*"}, {Exchange: "ex", RoutingKey: "#"}}})
	declare(t, b, transport.Queue{Name: "q2", Bindings: []transport.Binding{{Exchange: "ex", RoutingKey: "a.b"}}})
	ch1, _ := consume(t, b, "q1", 0)
	ch2, _ := consume(t, b, "q2", 0)
	publish(t, b, transport.Publishing{Exchange: "ex", RoutingKey: "a.b", Message: transport.Message{Body: []byte("m")}})
	d := recv(t, ch1)
	if d.Exchange != "ex" || d.RoutingKey != "a.b" {
		t.Errorf("delivery from %q %q", d.Exchange, d.RoutingKey)
	}
	recv(t, ch2)
	none(t, ch1, 50e6)
}

func TestDefaultExchangeAndMissingExchange(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	ch, _ := consume(t, b, "q", 0)
	send(t, b, "q", "direct to q")
	if got := bodies(t, ch, 1); !slices.Equal(got, []string{"direct to q"}) {
		t.Fatal(got)
	}
	err := b.Publish(context.Background(), transport.Publishing{Exchange: "nope", RoutingKey: "q"})
	wantErr(t, err, "NOT_FOUND", `"nope"`)
	err = b.Publish(context.Background(), transport.Publishing{RoutingKey: "no-queue", Mandatory: true})
	if !errors.Is(err, transport.ErrUnroutable) {
		t.Fatalf("mandatory to no queue: %v", err)
	}
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "no-queue"}); err != nil {
		t.Fatalf("not mandatory to no queue: %v", err)
	}
	err = b.DeclareQueue(context.Background(), transport.Queue{Name: "q2", Bindings: []transport.Binding{{Exchange: "missing", RoutingKey: "k"}}})
	wantErr(t, err, "NOT_FOUND", `"missing"`)
}
