package amqp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
)

// publishChannel is the publisher's current confirm channel (nil between
// a discarded one and the next publish).
func publishChannel(b *connection) *amqp091.Channel {
	b.mu.Lock()
	sess := b.sess
	b.mu.Unlock()
	if sess == nil {
		return nil
	}
	sess.pub.mu.Lock()
	defer sess.pub.mu.Unlock()
	return sess.pub.ch
}

// fullQueue declares name as a queue that refuses publishes (basic.nack)
// once it holds limit messages.
func fullQueue(t *testing.T, b *connection, name string, limit int32) {
	t.Helper()
	if err := b.DeclareQueue(context.Background(), transport.Queue{Name: name,
		Args: map[string]any{"x-overflow": "reject-publish", "x-max-length": limit}}); err != nil {
		t.Fatal(err)
	}
}

// A publish the broker nacks is sent again on a new channel, per
// Options.Retry, and arrives once the queue has room.
func TestNackedPublishIsRetriedOnANewChannel(t *testing.T) {
	t.Parallel()
	uri := testbroker.URI(t)
	b, err := Dial(context.Background(), uri, Options{Retry: transport.RetryPolicy{MaxRetries: 100, IntervalStart: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const queue = "nacked_then_taken"
	fullQueue(t, b, queue, 1)
	publish := func(body string) error {
		return b.Publish(context.Background(), transport.Publishing{RoutingKey: queue, Mandatory: true,
			Message: transport.Message{Body: []byte(body)}})
	}
	if err := publish("first"); err != nil {
		t.Fatal(err)
	}
	before := publishChannel(b)
	done := make(chan error, 1)
	go func() { done <- publish("second") }()
	deadline := time.Now().Add(10 * time.Second)
	for ch := publishChannel(b); ch == before || ch == nil; ch = publishChannel(b) {
		if time.Now().After(deadline) {
			t.Fatal("waited 10 s for the nacked publish to go again on a new channel")
		}
		select {
		case err := <-done:
			t.Fatalf("the publish into a full queue ended (%v) before a retry on a new channel", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	raw := rawamqp.Channel(t, uri, nil)
	if _, err := raw.QueuePurge(queue, false); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the retried publish: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the retried publish did not end once the queue had room")
	}
	m, ok, err := raw.Get(queue, true)
	if err != nil || !ok || string(m.Body) != "second" {
		t.Fatalf("the queue holds %q (%v, %v), want the retried message", m.Body, ok, err)
	}
}

// A publish the broker goes on nacking fails once its retries are spent,
// with an error that names the routing key and says the broker refused it;
// the connection goes on publishing.
func TestNackedPublishFailsAfterItsRetries(t *testing.T) {
	t.Parallel()
	b, err := Dial(context.Background(), testbroker.URI(t), Options{Retry: transport.RetryPolicy{MaxRetries: 2, IntervalStart: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const queue = "never_takes"
	fullQueue(t, b, queue, 0)
	err = b.Publish(context.Background(), transport.Publishing{RoutingKey: queue, Mandatory: true})
	if !errors.Is(err, errNacked) || !strings.Contains(err.Error(), queue) {
		t.Fatalf("err = %v, want the broker's refusal naming %q", err, queue)
	}
	if err := b.DeclareQueue(context.Background(), transport.Queue{Name: "takes"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: "takes", Mandatory: true}); err != nil {
		t.Fatalf("a publish after the refused one: %v", err)
	}
}
