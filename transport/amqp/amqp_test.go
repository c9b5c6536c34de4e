package amqp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

// freezer is a loopback TCP proxy to the broker whose live connections can be
// frozen: bytes stop flowing both ways but nothing is closed, as with a peer
// that died without a word. New connections flow normally.
type freezer struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen chan struct{}
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, target: target, frozen: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		frozen := f.frozen
		f.conns = append(f.conns, c, up)
		f.mu.Unlock()
		f.wg.Add(2)
		go f.pipe(c, up, frozen)
		go f.pipe(up, c, frozen)
	}
}

// pipe copies until the connection ends or the freeze, then holds on.
func (f *freezer) pipe(dst, src net.Conn, frozen chan struct{}) {
	defer f.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		src.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := src.Read(buf)
		select {
		case <-frozen:
			return // drop what was read; the peer sees silence
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		var ne net.Error
		if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
			return
		}
	}
}

// freeze silences every connection made so far.
func (f *freezer) freeze() {
	f.mu.Lock()
	close(f.frozen)
	f.frozen = make(chan struct{})
	f.mu.Unlock()
}

func (f *freezer) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestHeartbeatDetectsDeadPeer(t *testing.T) {
	u, err := url.Parse(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	f := newFreezer(t, u.Host)
	u.Host = f.ln.Addr().String()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	b, err := amqp.Dial(context.Background(), u.String(), amqp.Options{Heartbeat: time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	q := transport.Queue{Name: "heartbeat-test", AutoDelete: true}
	if err := b.DeclareQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: q.Name, Prefetch: 10}, func(d transport.Delivery) {
		d.Ack()
		got <- string(d.Body)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	f.freeze()
	frozeAt := time.Now()
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := b.Publish(pctx, transport.Publishing{RoutingKey: q.Name, Message: transport.Message{Body: []byte("after")}}); err != nil {
		t.Fatalf("publish across the dead peer: %v", err)
	}
	select {
	case body := <-got:
		if body != "after" {
			t.Fatalf("got %q", body)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the consumer did not resume")
	}
	took := time.Since(frozeAt)
	t.Logf("dead peer noticed and connection restored after %v (heartbeat 1s)", took)
	if took > 10*time.Second {
		t.Errorf("took %v to notice a dead peer with a 1s heartbeat", took)
	}
	out := logs.String()
	if strings.Count(out, "broker connection lost") != 1 || strings.Count(out, "broker connection restored") != 1 {
		t.Errorf("want one lost and one restored line, got:\n%s", out)
	}
}

func TestUnroutableAndConfirmed(t *testing.T) {
	b, err := amqp.Dial(context.Background(), testbroker.URI(t), amqp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	err = b.Publish(ctx, transport.Publishing{RoutingKey: "nobody-here", Mandatory: true, Message: transport.Message{Body: []byte("x")}})
	if !errors.Is(err, transport.ErrUnroutable) {
		t.Fatalf("mandatory to nowhere: %v", err)
	}
	if err := b.Publish(ctx, transport.Publishing{RoutingKey: "nobody-here", Message: transport.Message{Body: []byte("x")}}); err != nil {
		t.Fatalf("non-mandatory to nowhere: %v", err)
	}
}

func TestConsumerSurvivesQueueDeletion(t *testing.T) {
	b, err := amqp.Dial(context.Background(), testbroker.URI(t), amqp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	q := transport.Queue{Name: "deleted-under-us", Durable: true}
	if err := b.DeclareQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: q.Name, Prefetch: 1}, func(d transport.Delivery) {
		d.Ack()
		got <- string(d.Body)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// An operator deletes the queue: RabbitMQ cancels the consumer.
	other, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ch, err := other.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDelete(q.Name, false, false, false); err != nil {
		t.Fatal(err)
	}
	// The consumer declares its queue again and goes on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := b.Publish(ctx, transport.Publishing{RoutingKey: q.Name, Mandatory: true, Message: transport.Message{Body: []byte("again")}}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("the queue was never declared again: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case body := <-got:
		if body != "again" {
			t.Fatalf("got %q", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the consumer did not resume after its queue was deleted")
	}
	if err := ch.Close(); err != nil {
		t.Log(err)
	}
}

// TestReturnsMatchTheirOwnPublish: two mandatory publishes of one message
// (same message id) at once, one to a queue and one to nowhere, each get
// their own outcome: the return of one is never taken for the other's.
func TestReturnsMatchTheirOwnPublish(t *testing.T) {
	b, err := amqp.Dial(context.Background(), testbroker.URI(t), amqp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const queue = "returns-match"
	if err := b.DeclareQueue(ctx, transport.Queue{Name: queue, AutoDelete: false}); err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	var wg sync.WaitGroup
	var wrongRouted, wrongReturned atomic.Int32
	for i := range rounds {
		id := fmt.Sprintf("event-%d", i)
		msg := transport.Message{Body: []byte("x"), MessageID: id}
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := b.Publish(ctx, transport.Publishing{RoutingKey: queue, Mandatory: true, Message: msg}); err != nil {
				wrongRouted.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			if err := b.Publish(ctx, transport.Publishing{RoutingKey: "nobody-here", Mandatory: true, Message: msg}); !errors.Is(err, transport.ErrUnroutable) {
				wrongReturned.Add(1)
			}
		}()
	}
	wg.Wait()
	if r, u := wrongRouted.Load(), wrongReturned.Load(); r+u > 0 {
		t.Errorf("of %d pairs of copies, %d routed copies failed and %d unroutable ones did not fail with ErrUnroutable", rounds, r, u)
	}
}
