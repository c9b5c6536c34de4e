package amqp_test

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
)

// rawChannel is a plain amqp091-go channel on the test vhost, to look at
// what the Broker declared from the outside.
func rawChannel(t *testing.T) *amqp091.Channel {
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

// declaresAs reports whether declaring name again as queue type typ (no
// other arguments but args) is accepted: RabbitMQ refuses another type.
func declaresAs(t *testing.T, name, typ string, args amqp091.Table) bool {
	t.Helper()
	ch := rawChannel(t)
	if args == nil {
		args = amqp091.Table{}
	}
	if typ != amqp.QueueClassic {
		args["x-queue-type"] = typ
	}
	_, err := ch.QueueDeclare(name, true, false, false, false, args)
	return err == nil
}

// TestQueueTypeQuorum: with QueueType quorum the durable queues (a
// service's, a reply queue with x-expires, a delay queue with a TTL and
// dead-lettering) are quorum queues carrying the delivery limit, and
// exclusive and auto-delete queues stay classic, as RabbitMQ requires.
func TestQueueTypeQuorum(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := amqp.Dial(ctx, testbroker.URI(t), amqp.Options{QueueType: amqp.QueueQuorum, DeliveryLimit: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	durable := []transport.Queue{
		{Name: "q-rpc-quorum", Durable: true},
		{Name: "q-reply-quorum", Durable: true, Args: map[string]any{"x-expires": int32(60000)}},
		{Name: "q-delay-quorum.retry.50", Durable: true, Args: map[string]any{
			"x-message-ttl": int32(50), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q-rpc-quorum"}},
	}
	for _, q := range durable {
		if err := b.DeclareQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
		args := amqp091.Table{"x-delivery-limit": int32(7)}
		for k, v := range q.Args {
			args[k] = v
		}
		if !declaresAs(t, q.Name, amqp.QueueQuorum, args) {
			t.Errorf("%s: not a quorum queue with x-delivery-limit 7", q.Name)
		}
		if declaresAs(t, q.Name, amqp.QueueClassic, nil) {
			t.Errorf("%s: declared again as classic", q.Name)
		}
	}
	for _, q := range []transport.Queue{
		{Name: "q-exclusive", Durable: true, Exclusive: true},
		{Name: "q-autodelete", Durable: true, AutoDelete: true},
		{Name: "q-transient"},
	} {
		if err := b.DeclareQueue(ctx, q); err != nil {
			t.Fatalf("%s: %v", q.Name, err)
		}
	}
	// The delay queue works as a quorum queue: the message comes out after
	// its TTL into the queue it dead-letters to.
	if err := b.Publish(ctx, transport.Publishing{RoutingKey: "q-delay-quorum.retry.50", Mandatory: true,
		Message: transport.Message{Body: []byte("later")}}); err != nil {
		t.Fatal(err)
	}
	ch := rawChannel(t)
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, ok, err := ch.Get("q-rpc-quorum", true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if string(d.Body) != "later" {
				t.Fatalf("got %q", d.Body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the delayed message never reached its queue")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestQueueTypeClashIsExplained: an app whose QUEUE_TYPE differs from the
// type its queue already has fails to declare it with an error naming the
// queue, both types and the setting, whichever way round.
func TestQueueTypeClashIsExplained(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	classic, err := amqp.Dial(ctx, testbroker.URI(t), amqp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer classic.Close()
	quorum, err := amqp.Dial(ctx, testbroker.URI(t), amqp.Options{QueueType: amqp.QueueQuorum})
	if err != nil {
		t.Fatal(err)
	}
	defer quorum.Close()
	for _, tt := range []struct {
		first, second *amqp.Broker
		name, want    string
	}{
		{classic, quorum, "clash-was-classic", `queue "clash-was-classic" exists as a classic queue, but QUEUE_TYPE is quorum`},
		{quorum, classic, "clash-was-quorum", `queue "clash-was-quorum" exists as a quorum queue, but QUEUE_TYPE is classic`},
	} {
		q := transport.Queue{Name: tt.name, Durable: true}
		if err := tt.first.DeclareQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
		err := tt.second.DeclareQueue(ctx, q)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("declaring %s again: %v; want it to contain %q", tt.name, err, tt.want)
		}
	}
}

// TestDeliveryLimitDeadLetters: a message returned unacked more times than
// the delivery limit goes to the queue's dead-letter exchange, as Hypha's
// event queues do, instead of coming back forever.
func TestDeliveryLimitDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, err := amqp.Dial(ctx, testbroker.URI(t), amqp.Options{QueueType: amqp.QueueQuorum, DeliveryLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, q := range []transport.Queue{
		{Name: "limited-dlq", Durable: true},
		{Name: "limited", Durable: true, Args: map[string]any{
			"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "limited-dlq"}},
	} {
		if err := b.DeclareQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, transport.Publishing{RoutingKey: "limited", Mandatory: true,
		Message: transport.Message{Body: []byte("poison")}}); err != nil {
		t.Fatal(err)
	}
	ch := rawChannel(t)
	deadline := time.Now().Add(20 * time.Second)
	for returned := 0; ; {
		if d, ok, err := ch.Get("limited-dlq", true); err != nil {
			t.Fatal(err)
		} else if ok {
			if returned != 3 {
				t.Errorf("dead-lettered after %d returns, want 3 (limit 2)", returned)
			}
			if string(d.Body) != "poison" {
				t.Fatalf("got %q", d.Body)
			}
			return
		}
		if d, ok, err := ch.Get("limited", false); err != nil {
			t.Fatal(err)
		} else if ok {
			if err := d.Nack(false, true); err != nil {
				t.Fatal(err)
			}
			returned++
		}
		if time.Now().After(deadline) {
			t.Fatalf("not dead-lettered after %d returns", returned)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSeveralNodesTriedInTurn: with a list of URIs, a node that does not
// answer is skipped for the next, at start and after losing the connection.
func TestSeveralNodesTriedInTurn(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: a node that is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	good := testbroker.URI(t)
	down := withHost(t, good, dead)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := amqp.Dial(ctx, down+" , "+good, amqp.Options{Reconnect: transport.ReconnectPolicy{IntervalStart: 10 * time.Millisecond, IntervalMax: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.DeclareQueue(ctx, transport.Queue{Name: "two-nodes", Durable: true}); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, transport.Publishing{RoutingKey: "two-nodes", Mandatory: true, Message: transport.Message{Body: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
}

// TestSeveralNodesRedacted: when no node answers, the error names every
// node without its password.
func TestSeveralNodesRedacted(t *testing.T) {
	t.Parallel()
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		ln.Close()
	}
	uris := "amqp://u:secret@" + addrs[0] + "/,amqp://u:secret@" + addrs[1] + "/"
	_, err := amqp.Dial(context.Background(), uris, amqp.Options{Reconnect: transport.ReconnectPolicy{
		IntervalStart: 10 * time.Millisecond, IntervalMax: 20 * time.Millisecond, MaxElapsed: 200 * time.Millisecond}})
	if err == nil {
		t.Fatal("connected to nodes that are down")
	}
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("the error shows a password: %v", err)
	}
	if !strings.Contains(err.Error(), "RECONNECT.MAX_ELAPSED") {
		t.Fatalf("error %v; want it to say it gave up", err)
	}
}

// TestSeveralNodesFailOver: when the node in use goes, the Broker moves to
// the next node of the list, and the log says which.
func TestSeveralNodesFailOver(t *testing.T) {
	t.Parallel()
	good := testbroker.URI(t)
	broker := uriHost(t, good) // wherever testbroker's broker is (HYPHA_TEST_AMQP_HOST)
	n1, n2 := newFreezer(t, broker), newFreezer(t, broker)
	node := func(f *freezer) string { return withHost(t, good, f.ln.Addr().String()) }
	var logs syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := amqp.Dial(ctx, node(n1)+","+node(n2), amqp.Options{
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		Reconnect: transport.ReconnectPolicy{IntervalStart: 10 * time.Millisecond, IntervalMax: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.DeclareQueue(ctx, transport.Queue{Name: "fail-over", Durable: true}); err != nil {
		t.Fatal(err)
	}
	n1.close() // the first node goes
	if err := b.Publish(ctx, transport.Publishing{RoutingKey: "fail-over", Mandatory: true,
		Message: transport.Message{Body: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"hypha: connected to the broker\" node=" + n1.ln.Addr().String(),
		"hypha: broker connection restored\" node=" + n2.ln.Addr().String(),
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}

// uriHost is the host:port of the AMQP URI uri.
func uriHost(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("testbroker's URI %q: %v", uri, err)
	}
	return u.Host
}

// withHost is uri with its host:port replaced by hostPort, so that a test
// can point a client at another address (a dead port, a proxy) whatever
// address the broker has.
func withHost(t *testing.T, uri, hostPort string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("testbroker's URI %q: %v", uri, err)
	}
	u.Host = hostPort
	return u.String()
}
