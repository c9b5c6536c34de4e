package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// uncertainBroker makes the first publish to key end with ErrUncertain, as
// when the connection drops between a publish and its confirm: the request
// is lost, or, when arrived is set, it reaches the broker just ahead of the
// copy sent again. (Sent at once, its reply could end the call before the
// client sends the copy, which the client then rightly does not send.)
type uncertainBroker struct {
	transport.Broker
	key     string
	arrived bool

	mu   sync.Mutex
	sent []transport.Publishing // every publish to key
}

func (b *uncertainBroker) Publish(ctx context.Context, p transport.Publishing) error {
	if p.RoutingKey != b.key {
		return b.Broker.Publish(ctx, p)
	}
	b.mu.Lock()
	b.sent = append(b.sent, p)
	first, sent := len(b.sent) == 1, b.sent
	b.mu.Unlock()
	if first {
		return fmt.Errorf("publishing: %w", transport.ErrUncertain)
	}
	if b.arrived && len(sent) == 2 {
		// Both copies reach the broker: the reply to the first can end
		// the call, and cancel ctx, before the second is confirmed.
		ctx = context.WithoutCancel(ctx)
		if err := b.Broker.Publish(ctx, sent[0]); err != nil {
			return err
		}
	}
	return b.Broker.Publish(ctx, p)
}

func (b *uncertainBroker) publishes() []transport.Publishing {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]transport.Publishing(nil), b.sent...)
}

// uncertainClient is a client on its own connection whose first request to
// service.method has an uncertain fate.
func uncertainClient(t *testing.T, service, method string, arrived bool, cfg rpc.Config) (*rpc.Client, *uncertainBroker) {
	t.Helper()
	broker, err := dial.Dial(context.Background(), testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	ub := &uncertainBroker{Broker: broker, key: service + "." + method, arrived: arrived}
	c := rpc.NewClient(ub, cfg)
	if err := c.Start(context.Background()); err != nil {
		broker.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		broker.Close()
	})
	return c, ub
}

// countingService serves "add", counting its runs, and counts the copies
// it drops.
func countingService(t *testing.T, service string, delay time.Duration) (runs, dups *atomic.Int64) {
	runs, dups = new(atomic.Int64), new(atomic.Int64)
	serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(4),
		OnDuplicate: func(string) { dups.Add(1) }}, func(r *entrypoint.Registry) {
		rpc.Handle(r, "add", func(_ context.Context, in pair) (float64, error) {
			runs.Add(1)
			time.Sleep(delay)
			return in.A + in.B, nil
		})
	})
	return runs, dups
}

// eventually waits for cond, up to a bound generous enough for a loaded
// machine: it stops a test that would hang, and measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	const bound = 30 * time.Second
	for end := time.Now().Add(bound); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUncertainRequestIsSentAgain(t *testing.T) {
	for _, arrived := range []bool{false, true} {
		t.Run(fmt.Sprintf("arrived=%v", arrived), func(t *testing.T) {
			service := fmt.Sprintf("resend_%v", arrived)
			runs, dups := countingService(t, service, 0)
			c, ub := uncertainClient(t, service, "add", arrived, rpc.Config{Timeout: 10 * time.Second})
			start := time.Now()
			got, err := rpc.Call[float64](context.Background(), c.Proxy(service), "add", rpc.Args(2, 3))
			if err != nil || got != 5 {
				t.Fatalf("call: %v, %v", got, err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("answered after %v: it waited instead of sending again", took)
			}
			sent := ub.publishes()
			if len(sent) != 2 {
				t.Fatalf("the request went out %d times, want 2", len(sent))
			}
			if sent[0].MessageID == "" || sent[0].MessageID != sent[1].MessageID || sent[0].CorrelationID != sent[1].CorrelationID {
				t.Fatalf("copies differ: message ids %q, %q; correlation ids %q, %q",
					sent[0].MessageID, sent[1].MessageID, sent[0].CorrelationID, sent[1].CorrelationID)
			}
			if arrived {
				// Both copies reached the service: the second is dropped.
				eventually(t, "the copy dropped", func() bool { return dups.Load() == 1 })
			}
			// Every copy in the queue has been run or dropped by now.
			waitQueueEmpty(t, rpc.QueueName(service))
			if n := runs.Load(); n != 1 {
				t.Fatalf("the handler ran %d times, want once", n)
			}
			if c.InFlight() != 0 {
				t.Fatalf("%d calls still wait", c.InFlight())
			}
		})
	}
}

func TestNoResendWaitsUnlessIdempotent(t *testing.T) {
	runs, _ := countingService(t, "resend_off", 0)
	c, _ := uncertainClient(t, "resend_off", "add", false, rpc.Config{Timeout: 700 * time.Millisecond, NoResend: true})
	_, err := rpc.Call[float64](context.Background(), c.Proxy("resend_off"), "add", rpc.Args(1, 1))
	if !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("with NoResend, a lost request: err = %v, want ErrTimeout", err)
	}

	c, _ = uncertainClient(t, "resend_off", "add", false, rpc.Config{Timeout: 10 * time.Second, NoResend: true})
	got, err := rpc.Call[float64](context.Background(), c.Proxy("resend_off").Idempotent(), "add", rpc.Args(1, 1))
	if err != nil || got != 2 {
		t.Fatalf("an idempotent call with NoResend: %v, %v", got, err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the handler ran %d times, want once", n)
	}
}

func TestDuplicateRequestRunsOnce(t *testing.T) {
	// The handler is slow, so that the second copy comes while the first
	// runs; the third comes after the answer.
	runs, dups := countingService(t, "dedupe", 300*time.Millisecond)
	rc := rawDial(t)
	ch, err := rc.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatal(err)
	}
	publish := func(pub amqp091.Publishing) {
		t.Helper()
		conf, err := ch.PublishWithDeferredConfirmWithContext(context.Background(), rpc.DefaultExchange, "dedupe.add", true, false, pub)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := conf.WaitContext(context.Background()); !ok || err != nil {
			t.Fatalf("not confirmed: %v", err)
		}
	}
	request := func(messageID, corr string) amqp091.Publishing {
		return amqp091.Publishing{
			ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: amqp091.Persistent,
			MessageId: messageID, CorrelationId: corr, ReplyTo: rc.replyKey,
			Body: []byte(`{"args": [1, 2], "kwargs": {}}`),
		}
	}

	corr := uuid.NewString()
	req := request(uuid.NewString(), corr)
	publish(req)
	publish(req)
	if d := waitReply(t, rc.replies, corr); string(d.Body) != `{"result":3,"error":null}` {
		t.Fatalf("reply %s", d.Body)
	}
	publish(req)
	eventually(t, "both copies dropped", func() bool { return dups.Load() == 2 })
	select {
	case d := <-rc.replies:
		t.Fatalf("a second reply came: %s", d.Body)
	case <-time.After(200 * time.Millisecond):
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the handler ran %d times, want once", n)
	}

	// Without a message id (as nameko sends requests) nothing tells a copy
	// from another call: each runs. So does another call that happens to
	// share the message id but not the correlation id.
	corr = uuid.NewString()
	publish(request("", corr))
	publish(request("", corr))
	publish(request(req.MessageId, uuid.NewString()))
	eventually(t, "every request run", func() bool { return runs.Load() == 4 })
	if n := dups.Load(); n != 2 {
		t.Fatalf("%d copies dropped, want still 2", n)
	}
	waitQueueEmpty(t, rpc.QueueName("dedupe"))
}

func TestCallsSurviveConnectionLossWithoutIdempotent(t *testing.T) {
	var runs atomic.Int64
	serve(t, "math_resend", 4, mathService(&runs))
	p := newClient(t, 10*time.Second).Proxy("math_resend")
	waitAnswer(t, p, 5*time.Second)
	runs.Store(0)

	// Calls not marked idempotent, made all along while every connection
	// drops twice: each gets its own right answer, none fails.
	calls, wrong := callAcrossDrops(t, p)
	if wrong != 0 {
		t.Fatalf("%d of %d calls failed or got a wrong answer across the drops", wrong, calls)
	}
	// A request can still run twice: redelivered after its answer's ack
	// was lost, or its copy landing after the first's record was dropped.
	t.Logf("%d calls, %d runs", calls, runs.Load())
}
