package timer

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/transport"
)

// DueHeader carries a Once timer's token's due time, in Unix milliseconds.
const DueHeader = "x-hypha-due"

// publishTimeout bounds publishing a token; republishPause is how long a
// token whose successor could not be published waits before going back to
// its queue, so that a broker refusing it cannot make the timer loop hot.
const (
	publishTimeout = 30 * time.Second
	republishPause = 5 * time.Second
)

// QueueName is the queue that holds a Once timer's token: "timer-<service>.<timer>".
func QueueName(service, timer string) string { return "timer-" + service + "." + timer }

// DelayQueueName is the queue a Once timer's next token waits in until due:
// "timer-<service>.<timer>.delay".
func DelayQueueName(service, timer string) string { return QueueName(service, timer) + ".delay" }

// once runs a Once timer on the tokens the broker hands this instance.
type once struct {
	s        *Server
	t        *Timer
	queue    string
	delay    string
	consumer *entrypoint.Consumer

	mu      sync.Mutex
	lastDue int64 // the due time (Unix ms) of the last tick run here
}

func newOnce(s *Server, t *Timer) *once {
	o := &once{s: s, t: t, queue: QueueName(s.cfg.Service, t.name), delay: DelayQueueName(s.cfg.Service, t.name)}
	o.consumer = entrypoint.NewConsumer(s.broker, entrypoint.ConsumerConfig{
		Queue: o.queue, Pool: s.cfg.Pool, Prefetch: 1, Logger: s.log,
		Label:  func(transport.Delivery) string { return s.label(t) },
		Serve:  o.serve,
		Refuse: o.refuse,
	})
	return o
}

// start declares the token queue and its delay queue, seeds a token and
// starts consuming.
func (o *once) start(ctx context.Context) error {
	if o.s.broker == nil {
		return fmt.Errorf("service %q: timer %q: timer.Once() needs a broker", o.s.cfg.Service, o.t.name)
	}
	if err := o.s.broker.DeclareQueue(ctx, transport.Queue{
		Name: o.queue, Durable: true, Args: map[string]any{"x-single-active-consumer": true},
	}); err != nil {
		return err
	}
	if err := o.s.broker.DeclareQueue(ctx, transport.Queue{
		Name: o.delay, Durable: true,
		Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": o.queue},
	}); err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	due := nextDue(now, now, o.interval())
	if o.t.eager {
		due = now - now%o.interval()
	}
	if err := o.publish(ctx, due); err != nil {
		return fmt.Errorf("timer %q: seeding its token: %w", o.t.name, err)
	}
	return o.consumer.Start(ctx)
}

func (o *once) interval() int64 { return max(o.t.interval.Milliseconds(), 1) }

// nextDue is the first multiple of interval after both due and now.
func nextDue(due, now, interval int64) int64 {
	from := max(due, now)
	return from - from%interval + interval
}

// publish sends a token due at due: through the delay queue while due is
// ahead, straight to the token queue once it has come.
func (o *once) publish(ctx context.Context, due int64) error {
	msg := transport.Message{Persistent: true, Headers: map[string]any{DueHeader: due}}
	queue := o.queue
	if wait := time.Until(time.UnixMilli(due)); wait >= time.Millisecond {
		queue, msg.Expiration = o.delay, wait
	}
	return o.s.broker.Publish(ctx, transport.Publishing{RoutingKey: queue, Mandatory: true, Message: msg})
}

// serve runs the tick of a token unless it ran here already, then passes
// the token on: the next one published, this one acked.
func (o *once) serve(ctx context.Context, d transport.Delivery) {
	due, ok := dueOf(d.Headers)
	if !ok {
		o.refuse(d, fmt.Errorf("%w: the token has no %s header", transport.ErrMalformed, DueHeader))
		return
	}
	o.mu.Lock()
	ran := due <= o.lastDue
	o.mu.Unlock()
	if ran { // a second token, seeded by another instance: merge it away
		_ = d.Ack()
		return
	}
	_ = o.s.run(ctx, o.t)
	if entrypoint.Abandoned(ctx) {
		_ = d.Nack(true) // the next instance runs the tick again
		return
	}
	o.mu.Lock()
	o.lastDue = due
	o.mu.Unlock()
	o.pass(d, nextDue(due, time.Now().UnixMilli(), o.interval()))
}

// pass publishes the token due next, then acks d. When the new token cannot
// be published, d goes back to its queue after a pause, and its tick runs
// again rather than the timer stopping.
func (o *once) pass(d transport.Delivery, next int64) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	if err := o.publish(ctx, next); err != nil {
		o.s.log.Error("hypha: could not pass on the timer's token; it goes back to its queue", "timer", o.t.name, "error", err)
		o.mu.Lock()
		o.lastDue = 0
		o.mu.Unlock()
		select {
		case <-time.After(republishPause):
		case <-o.s.draining.Done():
		}
		_ = d.Nack(true)
		return
	}
	if err := d.Ack(); err != nil {
		o.s.log.Warn("hypha: ack of the timer's token failed; it will come again", "timer", o.t.name, "error", err)
	}
}

// refuse replaces a token that cannot be served (not one of ours, say) with
// a fresh one, so that the timer goes on.
func (o *once) refuse(d transport.Delivery, cause error) {
	o.s.log.Warn("hypha: timer token refused; a fresh one replaces it", "timer", o.t.name, "error", cause)
	if p, ok := errors.AsType[*entrypoint.PanicError](cause); ok {
		o.s.log.Error("hypha: timer token handling panicked", "timer", o.t.name, "panic", fmt.Sprint(p.Value))
	}
	now := time.Now().UnixMilli()
	o.pass(d, nextDue(now, now, o.interval()))
}

// dueOf reads a token's due time, whatever integer type it arrived as.
func dueOf(headers map[string]any) (int64, bool) {
	v := reflect.ValueOf(headers[DueHeader])
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(min(v.Uint(), 1<<62)), true
	}
	return 0, false
}
