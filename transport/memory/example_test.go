package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/memory"
)

// A queue bound to a topic exchange on the embedded broker: a publish is
// routed by its key, copied to the queue, delivered, and acked.
func Example() {
	ctx := context.Background()
	b, err := memory.Dial(ctx, "memory://example", memory.Options{})
	if err != nil {
		panic(err)
	}
	defer memory.Reset("example")
	_ = b.DeclareExchange(ctx, transport.Exchange{Name: "orders.events", Kind: transport.Topic, Durable: true})
	_ = b.DeclareQueue(ctx, transport.Queue{Name: "mailer", Durable: true,
		Bindings: []transport.Binding{{Exchange: "orders.events", RoutingKey: "order.*"}}})
	got := make(chan string, 1)
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: "mailer", Prefetch: 1}, func(d transport.Delivery) {
		got <- fmt.Sprintf("%s %s %v", d.RoutingKey, d.Body, d.Headers["tags"])
		_ = d.Ack()
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	err = b.Publish(ctx, transport.Publishing{Exchange: "orders.events", RoutingKey: "order.created", Mandatory: true,
		Message: transport.Message{Body: []byte(`{"id": 7}`), Headers: map[string]any{"tags": []string{"a", "b"}}}})
	fmt.Println("published:", err)
	fmt.Println(<-got)
	err = b.Publish(ctx, transport.Publishing{Exchange: "orders.events", RoutingKey: "invoice.paid", Mandatory: true})
	fmt.Println("unroutable:", errors.Is(err, transport.ErrUnroutable))
	// Output:
	// published: <nil>
	// order.created {"id": 7} [a b]
	// unroutable: true
}
