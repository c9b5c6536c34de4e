package events_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

func TestRetryDelay(t *testing.T) {
	const q = "evt-orders-order_created--mailer.on_created"
	var zero events.RetryDelay
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 6: 32 * time.Second} {
		d := zero.Delay(q, attempt)
		if d < base || d > base+base/5 {
			t.Errorf("default delay after attempt %d = %s, want %s plus at most a fifth", attempt, d, base)
		}
		if again := zero.Delay(q, attempt); again != d {
			t.Errorf("delay after attempt %d is %s, then %s: want it the same every time", attempt, d, again)
		}
	}
	if d := zero.Delay(q, 7); d != time.Minute {
		t.Errorf("default delay after attempt 7 = %s, want the maximum, 1m", d)
	}
	if d := zero.Delay(q, 1<<30); d != time.Minute {
		t.Errorf("delay after a huge attempt = %s, want the maximum", d)
	}
	if a, b := zero.Delay("evt-a", 1), zero.Delay("evt-b", 1); a == b {
		t.Logf("two queues got the same jitter (%s); possible, but unlikely", a)
	}
	flat := events.RetryDelay{Initial: 300 * time.Millisecond, Multiplier: 1, Max: 320 * time.Millisecond}
	if d := flat.Delay(q, 5); d < 300*time.Millisecond || d > 320*time.Millisecond {
		t.Errorf("flat delay = %s, want between 300 and 320 ms", d)
	}

	hq := transport.Queue{Name: q, Durable: true}
	dq := zero.Queue(hq, 2)
	ms := zero.Delay(q, 2).Milliseconds()
	if dq.Name != fmt.Sprintf("%s.retry.%d", q, ms) || !dq.Durable || dq.Exclusive || dq.AutoDelete {
		t.Errorf("delay queue = %+v", dq)
	}
	want := map[string]any{"x-message-ttl": int32(ms), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q}
	if fmt.Sprint(dq.Args) != fmt.Sprint(want) {
		t.Errorf("delay queue arguments = %v, want %v", dq.Args, want)
	}
	if dq := zero.Queue(transport.Queue{Name: q, Exclusive: true}, 1); dq.Durable || !dq.Exclusive {
		t.Errorf("the delay queue of an exclusive queue = %+v, want exclusive and not durable", dq)
	}

	for _, tt := range []struct {
		r    events.RetryDelay
		want string
	}{
		{events.RetryDelay{}, ""},
		{events.RetryDelay{Initial: 10 * time.Millisecond, Multiplier: 1.5, Max: time.Second}, ""},
		{events.RetryDelay{Initial: -time.Second}, "EVENTS.RETRY_DELAY.INITIAL"},
		{events.RetryDelay{Multiplier: 0.5}, "EVENTS.RETRY_DELAY.MULTIPLIER"},
		{events.RetryDelay{Max: 48 * time.Hour}, "EVENTS.RETRY_DELAY.MAX"},
		{events.RetryDelay{Initial: 2 * time.Minute}, "EVENTS.RETRY_DELAY.MAX 1m0s is under EVENTS.RETRY_DELAY.INITIAL 2m0s"},
	} {
		err := events.ValidateRetryDelay(tt.r)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: validate() = %v, want %q", tt.r, err, tt.want)
		}
	}
}

// declareAsIs declares queue with args on a connection of its own: RabbitMQ
// accepts it only when the queue exists with just these properties.
func declareAsIs(t *testing.T, queue string, durable, exclusive bool, args amqp091.Table) error {
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
	_, err = ch.QueueDeclare(queue, durable, false, exclusive, false, args)
	return err
}

// attemptLog records when each attempt at an event ran.
type attemptLog struct {
	mu sync.Mutex
	at map[int]time.Time
}

func (l *attemptLog) add(attempt int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		l.at = map[int]time.Time{}
	}
	l.at[attempt] = time.Now()
}

func (l *attemptLog) get(attempt int) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.at[attempt]
	return at, ok
}

// TestRetriesWaitTheirDelay: an event failing twice is tried again after
// the first delay, then after the second; meanwhile the one worker handles
// another event. The handler's queue keeps nameko's declaration; the delay
// queues are declared as RetryDelay.Queue says.
func TestRetriesWaitTheirDelay(t *testing.T) {
	const service, source = "mailer_delay", "orders_delay"
	delay := events.RetryDelay{Initial: 400 * time.Millisecond, Multiplier: 2, Max: 5 * time.Second}
	var attempts attemptLog
	other := make(chan time.Time, 1)
	startServer(t, nil, events.ServerConfig{Service: service, Pool: worker.NewPool(1), MaxRetries: 3, RetryDelay: delay},
		func(r *entrypoint.Registry) {
			events.Handle(r, "on_created", source, "order_created", func(ctx context.Context, o order) error {
				if o.ID == 2 {
					other <- time.Now()
					return nil
				}
				attempts.add(events.Attempt(ctx))
				if events.Attempt(ctx) < 3 {
					return errors.New("downstream blip")
				}
				return nil
			}, events.RequeueOnError())
		})
	d := dispatcher(t, source)
	ctx := context.Background()
	if err := d.Dispatch(ctx, "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { _, ok := attempts.get(1); return ok }) {
		t.Fatal("the event never arrived")
	}
	if err := d.Dispatch(ctx, "order_created", order{ID: 2}); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { _, ok := attempts.get(3); return ok }) {
		t.Fatal("the third attempt never came")
	}
	first, _ := attempts.get(1)
	second, _ := attempts.get(2)
	third, _ := attempts.get(3)
	if gap := second.Sub(first); gap < 400*time.Millisecond {
		t.Errorf("the first retry came %s after the first attempt, want at least 400 ms", gap)
	}
	if gap := third.Sub(second); gap < 800*time.Millisecond {
		t.Errorf("the second retry came %s after the first, want at least 800 ms", gap)
	}
	select {
	case at := <-other:
		if !at.Before(second) {
			t.Errorf("the other event was handled %s after the first retry: the worker was held while the retry waited", at.Sub(second))
		}
	default:
		t.Error("the other event was not handled while the first waited")
	}

	queue := fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service)
	dlx := amqp091.Table{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": events.DeadLetterQueueName(queue)}
	if err := declareAsIs(t, queue, true, false, dlx); err != nil {
		t.Errorf("the handler's queue is not declared to dead-letter to %s: %v", events.DeadLetterQueueName(queue), err)
	}
	for attempt := 1; attempt <= 3; attempt++ {
		dq := delay.Queue(transport.Queue{Name: queue, Durable: true}, attempt)
		if err := declareAsIs(t, dq.Name, true, false, amqp091.Table(dq.Args)); err != nil {
			t.Errorf("delay queue %d: %v", attempt, err)
		}
	}
}

// TestPendingRetrySurvivesRestart: a retry waiting in its delay queue when
// the handling service stops reaches the next instance, as attempt 2.
func TestPendingRetrySurvivesRestart(t *testing.T) {
	const service, source = "mailer_restart", "orders_restart"
	delay := events.RetryDelay{Initial: time.Second}
	cfg := events.ServerConfig{Service: service, Pool: worker.NewPool(2), MaxRetries: 3, RetryDelay: delay}
	failed := make(chan struct{}, 1)
	retried := make(chan string, 2)
	register := func(instance string) func(r *entrypoint.Registry) {
		return func(r *entrypoint.Registry) {
			events.Handle(r, "on_created", source, "order_created", func(ctx context.Context, o order) error {
				if events.Attempt(ctx) == 1 {
					failed <- struct{}{}
					return errors.New("downstream blip")
				}
				retried <- fmt.Sprintf("%s attempt %d", instance, events.Attempt(ctx))
				return nil
			}, events.RequeueOnError())
		}
	}
	stop := startServer(t, nil, cfg, register("first"))
	if err := dispatcher(t, source).Dispatch(context.Background(), "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed:
	case <-time.After(5 * time.Second):
		t.Fatal("the event never arrived")
	}
	stop()
	select {
	case got := <-retried:
		t.Fatalf("the retry came at once (%s), not after its delay", got)
	default:
	}
	queue := fmt.Sprintf("evt-%s-order_created--%s.on_created", source, service)
	held := delay.Queue(transport.Queue{Name: queue, Durable: true}, 1).Name
	if n, err := queueDepth(t, held); err != nil || n != 1 {
		t.Fatalf("delay queue %s holds %d events (%v) once the service stopped, want the retry", held, n, err)
	}
	if !waitFor(5*time.Second, func() bool { n, err := queueDepth(t, queue); return err == nil && n == 1 }) {
		t.Fatal("the retry did not come back to the handler's queue after its delay while no instance ran")
	}
	startServer(t, nil, cfg, register("second"))
	select {
	case got := <-retried:
		if got != "second attempt 2" {
			t.Errorf("retry = %s, want the second instance's attempt 2", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the pending retry never reached the restarted service")
	}
}

// TestBroadcastRetryGoesWithItsQueue: the delay queue of an unreliable
// broadcast handler is exclusive like its queue, so a retry pending when the
// instance stops goes with the instance's queue and leaves no queue behind.
func TestBroadcastRetryGoesWithItsQueue(t *testing.T) {
	const service, source = "audit_bcast", "orders_bcast"
	delay := events.RetryDelay{Initial: 5 * time.Second}
	failed := make(chan struct{}, 1)
	var queue transport.Queue
	stop := startServer(t, nil, events.ServerConfig{Service: service, MaxRetries: 1, RetryDelay: delay},
		func(r *entrypoint.Registry) {
			events.Handle(r, "audit", source, "order_created", func(ctx context.Context, o order) error {
				failed <- struct{}{}
				return errors.New("downstream blip")
			}, events.Type(events.Broadcast), events.UnreliableDelivery(), events.RequeueOnError())
			queue = entrypoint.Of[*events.Handler](r)[0].Queue(service)
		})
	if err := dispatcher(t, source).Dispatch(context.Background(), "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-failed:
	case <-time.After(5 * time.Second):
		t.Fatal("the event never arrived")
	}
	dq := delay.Queue(queue, 1)
	if !dq.Exclusive || dq.Durable {
		t.Fatalf("delay queue %+v, want exclusive", dq)
	}
	// Another connection cannot look into an exclusive queue: RabbitMQ
	// answers RESOURCE_LOCKED for one that exists.
	if _, err := queueDepth(t, dq.Name); err == nil || !strings.Contains(err.Error(), "RESOURCE_LOCKED") {
		t.Fatalf("delay queue %s: %v, want it there and exclusive", dq.Name, err)
	}
	select {
	case <-failed:
		t.Fatal("the retry came at once, not after its delay")
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	if _, err := queueDepth(t, dq.Name); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Errorf("the delay queue outlived its instance: %v", err)
	}
}
