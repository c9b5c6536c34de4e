package events_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport/dial"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

type order struct {
	ID   int    `json:"id"`
	Item string `json:"item"`
}

// handle runs one service's event handlers on a connection of its own until the test ends.
func handle(t *testing.T, service string, maxRetries int, register func(r *entrypoint.Registry)) {
	t.Helper()
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	r := entrypoint.NewRegistry(service)
	register(r)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	srv := events.NewServer(b, r, events.ServerConfig{Service: service, Pool: worker.NewPool(4), MaxRetries: maxRetries, ParentCallsTracked: 10})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
		b.Close()
	})
}

func dispatcher(t *testing.T, source string) *events.Dispatcher {
	t.Helper()
	d, err := hyphatest.Dispatcher(t, context.Background(), testbroker.URI(t), events.DispatcherConfig{Source: source})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDispatchReachesHandlerWithContext(t *testing.T) {
	got := make(chan contextdata.Data, 1)
	orders := make(chan order, 1)
	ids := make(chan string, 1)
	handle(t, "mailer_basic", 3, func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", "orders_basic", "order_created", func(ctx context.Context, o order) error {
			got <- contextdata.From(ctx)
			ids <- events.MessageID(ctx)
			orders <- o
			return nil
		})
	})
	d := dispatcher(t, "orders_basic")
	ctx := contextdata.WithUserID(context.Background(), "u-1")
	if err := d.Dispatch(ctx, "order_created", order{ID: 7, Item: "socks"}); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-orders:
		if o != (order{7, "socks"}) {
			t.Fatalf("got %+v", o)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the event never arrived")
	}
	if id := <-ids; len(id) != 36 {
		t.Errorf("the handler's message id = %q, want a uuid", id)
	}
	data := <-got
	stack := contextdata.CallIDStack(contextdata.WithData(context.Background(), data))
	if data["user_id"] != "u-1" || len(stack) != 2 {
		t.Fatalf("context data = %v", data)
	}
}

func TestPoisonEventIsDeadLettered(t *testing.T) {
	var mu sync.Mutex
	runs := map[int]int{}
	handle(t, "mailer_poison", 2, func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", "orders_poison", "order_created", func(ctx context.Context, o order) error {
			mu.Lock()
			runs[o.ID]++
			mu.Unlock()
			if o.ID == 13 {
				return errors.New("unlucky order")
			}
			return nil
		}, events.RequeueOnError())
	})
	d := dispatcher(t, "orders_poison")
	ctx := context.Background()
	for id := range 20 {
		if err := d.Dispatch(ctx, "order_created", order{ID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Dispatch(ctx, "order_created", "not an order"); err != nil {
		t.Fatal(err)
	}
	// The poison event is tried 1 + MAX_RETRIES times, the rest once each,
	// and the dead-letter queue ends with the poison event and the bad payload.
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	dlq := events.DeadLetterQueueName("evt-orders_poison-order_created--mailer_poison.on_created")
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(dlq, true, false, false, false, nil)
		if err == nil && q.Messages == 2 {
			break
		}
		if err != nil {
			ch, _ = conn.Channel()
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead-letter queue: %+v, %v", q, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if runs[13] != 3 {
		t.Errorf("poison event ran %d times, want 3 (1 + 2 retries)", runs[13])
	}
	for id := range 20 {
		if id != 13 && runs[id] != 1 {
			t.Errorf("event %d ran %d times", id, runs[id])
		}
	}
	msg, ok, err := ch.Get(dlq, true)
	if err != nil || !ok || msg.Headers[events.ErrorHeader] == nil || msg.Headers[events.AttemptHeader] == nil {
		t.Fatalf("dead letter: %v %v %+v", ok, err, msg.Headers)
	}
}

func TestRefusedDeadLetterQueueStopsTheStart(t *testing.T) {
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	dlq := events.DeadLetterQueueName("evt-orders_dlq-order_created--mailer_dlq.on_created")
	if _, err := ch.QueueDeclare(dlq, true, false, false, false, amqp091.Table{"x-max-length": int32(1)}); err != nil {
		t.Fatal(err)
	}
	defer ch.QueueDelete(dlq, false, false, false)

	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r := entrypoint.NewRegistry("mailer_dlq")
	events.Handle(r, "on_created", "orders_dlq", "order_created", func(context.Context, order) error { return nil })
	srv := events.NewServer(b, r, events.ServerConfig{Service: "mailer_dlq"})
	err = srv.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), dlq) {
		t.Fatalf("start with a refused dead-letter queue: %v", err)
	}
	srv.Stop(ctx)
}
