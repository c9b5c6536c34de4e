package memory_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// withDLQ declares q with its dead letters going to the queue "dlq" through
// the default exchange, and returns a consumer of "dlq".
func withDLQ(t *testing.T, b transport.Broker, q transport.Queue) <-chan transport.Delivery {
	t.Helper()
	declare(t, b, transport.Queue{Name: "dlq"})
	if q.Args == nil {
		q.Args = map[string]any{}
	}
	q.Args["x-dead-letter-exchange"] = ""
	q.Args["x-dead-letter-routing-key"] = "dlq"
	declare(t, b, q)
	ch, _ := consume(t, b, "dlq", 0)
	return ch
}

func TestExpiryOnlyAtHead(t *testing.T) {
	b := connect(t, newURI(t))
	dead := withDLQ(t, b, transport.Queue{Name: "q"})
	publish(t, b, transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("long"), Expiration: time.Hour}})
	publish(t, b, transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("short"), Expiration: 20 * time.Millisecond}})
	// The short one is due, but sits behind the long one.
	none(t, dead, 150*time.Millisecond)
	ch, _ := consume(t, b, "q", 0)
	d := recv(t, ch)
	if string(d.Body) != "long" || d.Expiration != time.Hour {
		t.Fatalf("got %q expiring in %v", d.Body, d.Expiration)
	}
	ack(t, d)
	none(t, ch, 50*time.Millisecond)
	d = recv(t, dead)
	if string(d.Body) != "short" || d.Expiration != 0 {
		t.Fatalf("dead letter %q expiring in %v; the expiration goes with dead-lettering", d.Body, d.Expiration)
	}
	death := d.Headers["x-death"].([]any)[0].(map[string]any)
	if death["reason"] != "expired" || death["queue"] != "q" || death["original-expiration"] != "20" {
		t.Errorf("x-death %v", death)
	}
}

func TestExpiryAtHeadWithoutConsumer(t *testing.T) {
	b := connect(t, newURI(t))
	dead := withDLQ(t, b, transport.Queue{Name: "q"})
	publish(t, b, transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("a"), Expiration: 20 * time.Millisecond}})
	publish(t, b, transport.Publishing{RoutingKey: "q", Message: transport.Message{Body: []byte("b"), Expiration: 40 * time.Millisecond}})
	if got := bodies(t, dead, 2); got[0] != "a" || got[1] != "b" {
		t.Fatalf("dead letters %q", got)
	}
}

func TestQueueTTL(t *testing.T) {
	tests := []struct {
		name string
		ttl  any
	}{{"int32", int32(30)}, {"int64", int64(30)}, {"int", 30}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := connect(t, newURI(t))
			dead := withDLQ(t, b, transport.Queue{Name: "q", Args: map[string]any{"x-message-ttl": tt.ttl}})
			start := time.Now()
			send(t, b, "q", "m")
			d := recv(t, dead)
			if waited := time.Since(start); waited < 30*time.Millisecond {
				t.Errorf("expired after %v", waited)
			}
			if d.Headers["x-first-death-reason"] != "expired" || d.Exchange != "" || d.RoutingKey != "dlq" {
				t.Errorf("dead letter %+v", d)
			}
		})
	}
}

func TestQueueTTLZeroDeliversToWaitingConsumer(t *testing.T) {
	b := connect(t, newURI(t))
	dead := withDLQ(t, b, transport.Queue{Name: "q", Args: map[string]any{"x-message-ttl": 0}})
	ch, c := consume(t, b, "q", 1)
	send(t, b, "q", "taken")
	send(t, b, "q", "dropped") // the consumer is full
	ack(t, recv(t, ch))
	if d := recv(t, dead); string(d.Body) != "dropped" {
		t.Fatalf("dead letter %q", d.Body)
	}
	c.Close()
}

func TestNackDeadLetters(t *testing.T) {
	b := connect(t, newURI(t))
	exchange(t, b, "dlx", transport.Topic)
	declare(t, b, transport.Queue{Name: "dead", Bindings: []transport.Binding{{Exchange: "dlx", RoutingKey: "orig.key"}}})
	declare(t, b, transport.Queue{Name: "q", Args: map[string]any{"x-dead-letter-exchange": "dlx"}})
	ch, _ := consume(t, b, "q", 0)
	dead, _ := consume(t, b, "dead", 0)
	exchange(t, b, "in", transport.Direct)
	declare(t, b, transport.Queue{Name: "q", Args: map[string]any{"x-dead-letter-exchange": "dlx"},
		Bindings: []transport.Binding{{Exchange: "in", RoutingKey: "orig.key"}}})
	publish(t, b, transport.Publishing{Exchange: "in", RoutingKey: "orig.key", Message: transport.Message{
		Body: []byte("body"), ContentType: "application/json", CorrelationID: "c1", Headers: map[string]any{"k": "v"}}})
	if err := recv(t, ch).Nack(false); err != nil {
		t.Fatal(err)
	}
	d := recv(t, dead)
	if string(d.Body) != "body" || d.ContentType != "application/json" || d.CorrelationID != "c1" || d.Headers["k"] != "v" {
		t.Fatalf("dead letter changed: %+v", d)
	}
	if d.Exchange != "dlx" || d.RoutingKey != "orig.key" {
		t.Errorf("dead letter from %q %q; want the original routing key on the dead-letter exchange", d.Exchange, d.RoutingKey)
	}
	death := d.Headers["x-death"].([]any)[0].(map[string]any)
	want := map[string]any{"count": int64(1), "reason": "rejected", "queue": "q", "exchange": "in",
		"routing-keys": []any{"orig.key"}, "time": death["time"]}
	if !reflect.DeepEqual(death, want) {
		t.Errorf("x-death %v, want %v", death, want)
	}
}

func TestNackWithoutDeadLetterExchangeDrops(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q"})
	send(t, b, "q", "m")
	ch, _ := consume(t, b, "q", 0)
	if err := recv(t, ch).Nack(false); err != nil {
		t.Fatal(err)
	}
	none(t, ch, 50*time.Millisecond)
}

func TestDeadLetterCycleDropped(t *testing.T) {
	b := connect(t, newURI(t))
	// Expired messages dead-lettered to their own queue would loop for ever.
	declare(t, b, transport.Queue{Name: "q", Args: map[string]any{"x-message-ttl": 10, "x-dead-letter-exchange": ""}})
	send(t, b, "q", "m")
	time.Sleep(100 * time.Millisecond)
	ch, _ := consume(t, b, "q", 0)
	none(t, ch, 50*time.Millisecond)
}

func TestQueueExpires(t *testing.T) {
	b := connect(t, newURI(t))
	q := transport.Queue{Name: "q", Durable: true, Args: map[string]any{"x-expires": int32(60)}}
	declare(t, b, q)
	time.Sleep(40 * time.Millisecond)
	declare(t, b, q) // declaring again counts as use
	time.Sleep(40 * time.Millisecond)
	_, c := consume(t, b, "q", 0) // so does a consumer
	time.Sleep(100 * time.Millisecond)
	c.Close()
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Mandatory: true}); err != nil {
		t.Fatalf("queue gone while in use: %v", err)
	}
	time.Sleep(150 * time.Millisecond)
	_, err := b.Consume(context.Background(), transport.ConsumeOptions{Queue: "q"}, func(transport.Delivery) {})
	wantErr(t, err, "NOT_FOUND", `"q"`)
}

func TestExclusiveQueue(t *testing.T) {
	uri := newURI(t)
	owner, other := connect(t, uri), connect(t, uri)
	declare(t, owner, transport.Queue{Name: "mine", Exclusive: true})
	_, err := other.Consume(context.Background(), transport.ConsumeOptions{Queue: "mine"}, func(transport.Delivery) {})
	wantErr(t, err, "RESOURCE_LOCKED")
	wantErr(t, other.DeclareQueue(context.Background(), transport.Queue{Name: "mine", Exclusive: true}), "RESOURCE_LOCKED")
	// Anyone may publish to it.
	if err := other.Publish(context.Background(), transport.Publishing{RoutingKey: "mine", Mandatory: true}); err != nil {
		t.Fatal(err)
	}
	owner.Close()
	err = other.Publish(context.Background(), transport.Publishing{RoutingKey: "mine", Mandatory: true})
	if err != transport.ErrUnroutable {
		t.Fatalf("exclusive queue outlived its connection: %v", err)
	}
}

func TestAutoDeleteQueue(t *testing.T) {
	b := connect(t, newURI(t))
	declare(t, b, transport.Queue{Name: "q", AutoDelete: true})
	send(t, b, "q", "kept") // no consumer yet: the queue stays
	_, c1 := consume(t, b, "q", 0)
	_, c2 := consume(t, b, "q", 0)
	c1.Close()
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Mandatory: true}); err != nil {
		t.Fatalf("deleted with a consumer left: %v", err)
	}
	c2.Close()
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "q", Mandatory: true}); err != transport.ErrUnroutable {
		t.Fatalf("auto-delete queue outlived its last consumer: %v", err)
	}
}

func TestDeleteQueue(t *testing.T) {
	b := connect(t, newURI(t))
	exchange(t, b, "ex", transport.Topic)
	declare(t, b, transport.Queue{Name: "q", Bindings: []transport.Binding{{Exchange: "ex", RoutingKey: "#"}}})
	_, _ = consume(t, b, "q", 0)
	if err := b.DeleteQueue(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, b.Ready(), `not consuming queue "q"`)
	if err := b.DeleteQueue(context.Background(), "q"); err != nil {
		t.Fatalf("deleting a missing queue: %v", err)
	}
	if err := b.Publish(context.Background(), transport.Publishing{Exchange: "ex", RoutingKey: "k", Mandatory: true}); err != transport.ErrUnroutable {
		t.Fatalf("binding outlived its queue: %v", err)
	}
}

// TestQuorumQueueType: x-queue-type quorum is taken, and kept equivalent,
// for a durable queue that is neither exclusive nor auto-delete, as RabbitMQ
// takes it; the others are refused, and other types are unsupported.
func TestQuorumQueueType(t *testing.T) {
	b := connect(t, newURI(t))
	ctx := context.Background()
	quorum := map[string]any{"x-queue-type": "quorum"}
	declare(t, b, transport.Queue{Name: "qq", Durable: true, Args: quorum})
	declare(t, b, transport.Queue{Name: "qq", Durable: true, Args: quorum})
	if err := b.DeclareQueue(ctx, transport.Queue{Name: "qq", Durable: true}); err == nil {
		t.Error("declaring a quorum queue again as classic was accepted")
	}
	for _, q := range []transport.Queue{
		{Name: "qq-transient", Args: quorum},
		{Name: "qq-exclusive", Durable: true, Exclusive: true, Args: quorum},
		{Name: "qq-autodelete", Durable: true, AutoDelete: true, Args: quorum},
		{Name: "stream", Durable: true, Args: map[string]any{"x-queue-type": "stream"}},
	} {
		if err := b.DeclareQueue(ctx, q); err == nil {
			t.Errorf("%s: declared", q.Name)
		}
	}
}
