package amqp_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
)

// owner is a connection that owns an exchange and a queue bound to it, as a
// service owns nameko-rpc and its rpc-<service> queue, and consumes the
// queue; got receives the bodies.
func owner(t *testing.T, exchange, queue string, log *syncBuffer) (b *amqp.Broker, got chan string) {
	t.Helper()
	ctx := context.Background()
	b, err := amqp.Dial(ctx, testbroker.URI(t), amqp.Options{TopologyCheck: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.DeclareExchange(ctx, transport.Exchange{Name: exchange, Kind: transport.Topic, Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeclareQueue(ctx, transport.Queue{Name: queue, Durable: true,
		Bindings: []transport.Binding{{Exchange: exchange, RoutingKey: queue + ".*"}}}); err != nil {
		t.Fatal(err)
	}
	got = make(chan string, 100)
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: queue, Prefetch: 1}, func(d transport.Delivery) {
		d.Ack()
		got <- string(d.Body)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return b, got
}

// admin is a channel of a plain connection of the test's own, as an
// operator (or a user allowed too much) uses.
func admin(t *testing.T) *amqp091.Channel {
	t.Helper()
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// routes waits until a message published to exchange with key reaches got.
func routes(t *testing.T, b *amqp.Broker, exchange, key string, got chan string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := b.Publish(context.Background(), transport.Publishing{Exchange: exchange, RoutingKey: key, Mandatory: true,
			Message: transport.Message{Body: []byte("hello")}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("exchange %q never routed %q again: %v", exchange, key, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the message never reached the consumer")
	}
}

// An exchange deleted under the connection that declared it (RabbitMQ drops
// its bindings with it) is declared again, with the bindings, and routes
// again without a reconnect.
func TestTopologyComesBackWhenDeleted(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	b, got := owner(t, "watch-deleted", "watch-deleted-q", &log)
	routes(t, b, "watch-deleted", "watch-deleted-q.m", got)
	if err := admin(t).ExchangeDelete("watch-deleted", false, false); err != nil {
		t.Fatal(err)
	}
	routes(t, b, "watch-deleted", "watch-deleted-q.m", got)
	if !strings.Contains(log.String(), `exchange=watch-deleted`) {
		t.Errorf("nothing logged of the exchange's loss:\n%s", log.String())
	}
	waitReady(t, b, true)
}

// A passive declare takes an exchange that exists as it is, and declares
// one that is missing.
func TestPassiveDeclare(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := amqp.Dial(ctx, testbroker.URI(t), amqp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ex := transport.Exchange{Name: "passive-x", Kind: transport.Topic, Durable: true, Passive: true}
	if err := b.DeclareExchange(ctx, ex); err != nil {
		t.Fatal(err)
	}
	ch := admin(t)
	if err := ch.ExchangeDeclarePassive(ex.Name, ex.Kind, true, false, false, false, nil); err != nil {
		t.Fatalf("the missing exchange was not declared: %v", err)
	}
	if err := ch.ExchangeDelete(ex.Name, false, false); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(ex.Name, amqp091.ExchangeFanout, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.DeclareExchange(ctx, ex); err != nil {
		t.Fatalf("a passive declare of an exchange of another type: %v", err)
	}
	ex.Passive = false
	if err := b.DeclareExchange(ctx, ex); err == nil || !strings.Contains(err.Error(), `exchange "passive-x" exists, but not as the durable topic exchange`) {
		t.Fatalf("declaring over an exchange of another type: %v; want it named, with what to do", err)
	}
}

// An exchange declared again as another type is reported by name at error,
// with what to do, and the connection is not ready until it is deleted;
// then the owner declares it again and it routes.
func TestTopologyOfTheWrongTypeIsReported(t *testing.T) {
	t.Parallel()
	var log syncBuffer
	b, got := owner(t, "watch-fanout", "watch-fanout-q", &log)
	ch := admin(t)
	// A check between the delete and the declare makes the declare fail:
	// then again.
	for {
		if err := ch.ExchangeDelete("watch-fanout", false, false); err != nil {
			t.Fatal(err)
		}
		err := ch.ExchangeDeclare("watch-fanout", amqp091.ExchangeFanout, true, false, false, false, nil)
		if err == nil {
			break
		}
		if amqpErr := (*amqp091.Error)(nil); !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.PreconditionFailed {
			t.Fatal(err)
		}
		ch = admin(t)
	}
	waitReady(t, b, false)
	if err := b.Ready(); !strings.Contains(err.Error(), `"watch-fanout"`) {
		t.Errorf("Ready = %v; want it to name the exchange", err)
	}
	waitLog(t, &log, "level=ERROR", `exchange \"watch-fanout\" exists, but not as the durable topic exchange`, "delete it")
	if err := ch.ExchangeDelete("watch-fanout", false, false); err != nil {
		t.Fatal(err)
	}
	waitReady(t, b, true)
	routes(t, b, "watch-fanout", "watch-fanout-q.m", got)
}

func waitReady(t *testing.T, b *amqp.Broker, ready bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for (b.Ready() == nil) != ready {
		if time.Now().After(deadline) {
			t.Fatalf("Ready = %v for 10 s; want ready %v", b.Ready(), ready)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitLog(t *testing.T, log *syncBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		found := false
		for _, line := range strings.Split(log.String(), "\n") {
			found = true
			for _, w := range want {
				found = found && strings.Contains(line, w)
			}
			if found {
				break
			}
		}
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in 10 s:\n%s", want, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
