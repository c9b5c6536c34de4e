package entrypoint_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/ctxwire"
	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// outcome is how a delivery left the consumer: served, or refused and why.
type outcome struct {
	body string
	err  error // nil when served
}

// consume runs a Consumer of a fresh queue on the test broker with serve,
// until stop or the test's end. It returns the broker, for publishing, the
// queue's name and stop.
func consume(t *testing.T, serve func(ctx context.Context, d transport.Delivery), refuse func(d transport.Delivery, err error)) (b transport.Broker, queue string, stop func()) {
	t.Helper()
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	queue = strings.ReplaceAll(t.Name(), "/", ".")
	if err := b.DeclareQueue(ctx, transport.Queue{Name: queue}); err != nil {
		t.Fatal(err)
	}
	pool := worker.NewPool(2)
	c := entrypoint.NewConsumer(b, entrypoint.ConsumerConfig{Queue: queue, Pool: pool,
		Logger: slog.New(slog.DiscardHandler), Serve: serve, Refuse: refuse})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = c.Drain(ctx)
			pool.Finish(ctx, time.Second)
			_ = c.Close()
			_ = b.Close()
		})
	}
	t.Cleanup(stop)
	return b, queue, stop
}

func send(t *testing.T, b transport.Broker, queue, body string, headers map[string]any) {
	t.Helper()
	if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: queue, Mandatory: true,
		Message: transport.Message{Body: []byte(body), Headers: headers}}); err != nil {
		t.Fatal(err)
	}
}

func await(t *testing.T, got <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-got:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery reached the consumer")
		panic("unreachable")
	}
}

// Every delivery takes one path: what is over a bound or panics is refused
// (never served, never requeued), what is left unsettled is dropped, and
// the consumer serves on after each.
func TestConsumerServesRefusesAndSettles(t *testing.T) {
	got := make(chan outcome, 16)
	serve := func(ctx context.Context, d transport.Delivery) {
		switch string(d.Body) {
		case "panic":
			panic("boom")
		case "leave": // settled by nobody
		case "twice":
			_ = d.Ack()
			if err := d.Ack(); !errors.Is(err, entrypoint.ErrSettled) {
				got <- outcome{body: "twice", err: fmt.Errorf("second ack: %v, want ErrSettled", err)}
				return
			}
		default:
			_ = d.Ack()
		}
		if entrypoint.Abandoned(ctx) {
			got <- outcome{body: string(d.Body), err: context.Cause(ctx)}
			return
		}
		got <- outcome{body: string(d.Body)}
	}
	refuse := func(d transport.Delivery, err error) {
		_ = d.Nack(false)
		got <- outcome{body: string(d.Body), err: err}
	}
	b, queue, stop := consume(t, serve, refuse)

	tooMany := map[string]any{}
	for i := range worker.MaxHeaders + 1 {
		tooMany[fmt.Sprintf("h%d", i)] = int32(i)
	}
	for _, tc := range []struct {
		body    string
		headers map[string]any
		want    error // nil: served
	}{
		{"plain", nil, nil},
		{"too many headers", tooMany, transport.ErrMalformed},
		{"bad context data", map[string]any{ctxwire.Prefix + contextdata.KeyCallIDStack: int32(1)}, transport.ErrMalformed},
		{"panic", nil, &worker.PanicError{}},
		{"twice", nil, nil},
		{"leave", nil, nil},
		{"after", nil, nil},
	} {
		send(t, b, queue, tc.body, tc.headers)
		o := await(t, got)
		if o.body != tc.body {
			t.Fatalf("got %q, want %q: a delivery came again", o.body, tc.body)
		}
		var pe *worker.PanicError
		switch {
		case tc.want == nil && o.err != nil:
			t.Errorf("%s: %v, want served", tc.body, o.err)
		case tc.want == nil:
		case errors.As(tc.want, &pe):
			if !errors.As(o.err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 || pe.Error() != "panic: boom" {
				t.Errorf("%s: refused with %v, want the panic with its stack", tc.body, o.err)
			}
		case !errors.Is(o.err, tc.want):
			t.Errorf("%s: refused with %v, want %v", tc.body, o.err, tc.want)
		}
	}
	// Nothing is left: the refused, the panicked and the unsettled were
	// all settled, not left to go back to the queue when the consumer
	// closes.
	stop()
	q, err := rawamqp.Channel(t, testbroker.URI(t), nil).QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if q.Messages != 0 {
		t.Fatalf("%d deliveries back in the queue after the consumer closed, want none", q.Messages)
	}
}

// A Refuse that panics drops the delivery rather than requeue it, and the
// consumer goes on.
func TestConsumerRefuseThatPanicsDrops(t *testing.T) {
	got := make(chan outcome, 16)
	serve := func(_ context.Context, d transport.Delivery) {
		_ = d.Ack()
		got <- outcome{body: string(d.Body)}
	}
	refuse := func(d transport.Delivery, err error) {
		got <- outcome{body: string(d.Body), err: err}
		panic("refusing too")
	}
	b, queue, _ := consume(t, serve, refuse)
	send(t, b, queue, "bad", map[string]any{ctxwire.Prefix + contextdata.KeyCallIDStack: true})
	if o := await(t, got); o.body != "bad" || o.err == nil {
		t.Fatalf("got %+v, want bad refused", o)
	}
	send(t, b, queue, "good", nil)
	if o := await(t, got); o.body != "good" || o.err != nil {
		t.Fatalf("got %+v, want good served: the refused one came again", o)
	}
}

// Lost, Abandoned and Interrupted say why a worker's work ended.
func TestWhyWorkEnded(t *testing.T) {
	lost := make(chan struct{})
	d := transport.Delivery{Lost: lost}
	if entrypoint.Lost(d) || entrypoint.Lost(transport.Delivery{}) {
		t.Fatal("Lost before the connection went")
	}
	close(lost)
	if !entrypoint.Lost(d) {
		t.Fatal("not Lost after the connection went")
	}
	for _, tc := range []struct {
		name                   string
		cause, err             error
		abandoned, interrupted bool
	}{
		{"served", nil, nil, false, false},
		{"failed", nil, errors.New("no"), false, false},
		{"stopping", entrypoint.ErrStopping, context.Canceled, true, true},
		{"lost", entrypoint.ErrLost, context.Canceled, true, true},
		{"fate unknown", nil, fmt.Errorf("publish: %w", transport.ErrUncertain), false, true},
		{"lost, said by err", nil, entrypoint.ErrLost, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			if tc.cause != nil {
				cancel(tc.cause)
			} else {
				defer cancel(nil)
			}
			if got := entrypoint.Abandoned(ctx); got != tc.abandoned {
				t.Errorf("Abandoned = %v, want %v", got, tc.abandoned)
			}
			if got := entrypoint.Interrupted(ctx, tc.err); got != tc.interrupted {
				t.Errorf("Interrupted = %v, want %v", got, tc.interrupted)
			}
		})
	}
}
