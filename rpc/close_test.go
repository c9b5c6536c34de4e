package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// queueExists reports whether the test vhost has a queue named name, with a
// passive declare on a connection of its own.
func queueExists(t *testing.T, name string) bool {
	t.Helper()
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	_, err = ch.QueueDeclarePassive(name, true, false, false, false, nil)
	var amqpErr *amqp091.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp091.NotFound {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func TestCloseDeletesReplyQueue(t *testing.T) {
	serve(t, "math_close", 1, mathService(nil))
	ctx := context.Background()
	shared, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer shared.Close()
	tests := []struct {
		name string
		open func() *rpc.Client
	}{
		{"client on a connection of its own", func() *rpc.Client { return newClient(t, 5*time.Second) }},
		{"client on a shared connection", func() *rpc.Client {
			c := rpc.NewClient(shared, rpc.Config{Timeout: 5 * time.Second})
			if err := c.Start(ctx); err != nil {
				t.Fatal(err)
			}
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.open()
			queue := rpc.ReplyQueueOf(c)
			if _, err := rpc.Call[float64](ctx, c.Proxy("math_close"), "add", rpc.Args(1, 2)); err != nil {
				t.Fatal(err)
			}
			if !queueExists(t, queue) {
				t.Fatalf("reply queue %s missing while the client is open", queue)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			if queueExists(t, queue) {
				t.Fatalf("reply queue %s still there after Close", queue)
			}
		})
	}
}

func TestDeletedQueueIsNotRedeclared(t *testing.T) {
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kept, deleted := "hypha.test.kept-"+uuid.NewString(), "hypha.test.deleted-"+uuid.NewString()
	for _, q := range []string{kept, deleted} {
		if err := b.DeclareQueue(ctx, transport.Queue{Name: q, Args: map[string]any{"x-expires": int32(60000)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.DeleteQueue(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteQueue(ctx, deleted); err != nil {
		t.Fatalf("deleting a queue already gone: %v", err)
	}
	testbroker.CloseConnections(t)
	// The broker declares its recorded topology on a new connection before it
	// uses it, so once a declaration succeeds again, the reconnect is done.
	deadline := time.Now().Add(waitBound)
	for {
		time.Sleep(100 * time.Millisecond)
		probeCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := b.DeclareExchange(probeCtx, transport.Exchange{Name: rpc.DefaultExchange, Kind: transport.Topic, Durable: true})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect within %v: %v", waitBound, err)
		}
	}
	if !queueExists(t, kept) {
		t.Fatalf("queue %s missing after the reconnect", kept)
	}
	if queueExists(t, deleted) {
		t.Fatalf("deleted queue %s declared again after the reconnect", deleted)
	}
}
