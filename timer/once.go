package timer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// dueHeader carries a Once timer's token's due time, in Unix milliseconds.
const dueHeader = "x-hypha-due"

// publishTimeout bounds publishing a token. A token that cannot be passed
// on is replaced by a fresh one, retried from reseedStart to reseedMax
// apart until one is published or the server drains, so that a broker
// refusing a token can neither stop the timer nor make it loop hot.
const (
	publishTimeout = 30 * time.Second
	reseedStart    = 100 * time.Millisecond
	reseedMax      = 30 * time.Second
)

// maxDelayMillis bounds a token's per-message TTL to 2^32-1 ms (about 49
// days), which RabbitMQ takes (3.10 refuses 2^40 with "invalid expiration",
// closing the channel); a token due later waits in the delay queue more
// than once.
const maxDelayMillis = 1<<32 - 1

// QueueName is the queue that holds a Once timer's token: "timer-<service>.<timer>".
func QueueName(service, timer string) string { return "timer-" + service + "." + timer }

// DelayQueueName is the queue a Once timer's next token waits in until due:
// "timer-<service>.<timer>.delay".
func DelayQueueName(service, timer string) string { return QueueName(service, timer) + ".delay" }

// once runs a Once timer on the tokens the broker hands this instance.
type once struct {
	s        *server
	t        *Timer
	queue    string
	delay    string
	consumer *entrypoint.Consumer

	mu      sync.Mutex
	lastDue int64 // the due time (Unix ms) of the last tick run here
	// waiting is the due time of the last early token sent back to wait,
	// and fresh that of the last token published to replace a refused
	// one: a second token for either is dropped rather than passed on, so
	// that a flood of copies collapses to one token per due time instead of
	// being passed on, one for one, for ever.
	waiting, fresh int64
}

func newOnce(s *server, t *Timer) *once {
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

// nextDue is the first multiple of interval after both due and now, or the
// last multiple an int64 holds when there is none.
func nextDue(due, now, interval int64) int64 {
	from := max(due, now, 0)
	if from > math.MaxInt64-interval {
		return math.MaxInt64 - math.MaxInt64%interval
	}
	return from - from%interval + interval
}

// publish sends a token due at due: through the delay queue while due is
// ahead, straight to the token queue once it has come.
func (o *once) publish(ctx context.Context, due int64) error {
	msg := transport.Message{Persistent: true, Headers: map[string]any{dueHeader: due}}
	queue := o.queue
	if now := time.Now().UnixMilli(); due > now {
		queue, msg.Expiration = o.delay, time.Duration(min(due-now, maxDelayMillis))*time.Millisecond
	}
	return o.s.broker.Publish(ctx, transport.Publishing{RoutingKey: queue, Mandatory: true, Message: msg})
}

// serve runs the tick of a token unless a tick of its due time or a later
// one ran here already, then passes the token on: the next one published,
// this one acked. A token that is not one this timer could have made is
// replaced by a fresh one; one that came early waits again in the delay
// queue. So no token, whatever it carries, makes the timer tick more than
// once per due time, and a due time is a multiple of the interval.
func (o *once) serve(ctx context.Context, d transport.Delivery) {
	now := time.Now().UnixMilli()
	due, err := o.check(d.Headers, now)
	if err != nil {
		o.refuse(d, err)
		return
	}
	o.mu.Lock()
	ran := due <= o.lastDue
	early, waits := due > now, due <= o.waiting
	if early && !waits {
		o.waiting = due
	}
	o.mu.Unlock()
	switch {
	case ran: // a second token, seeded by another instance: merge it away
		_ = d.Ack()
		return
	case early && waits: // another token of this due time waits already
		_ = d.Ack()
		return
	case early: // from an instance whose clock is ahead: wait for it
		o.pass(d, due)
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

// check reads a token's due time and says what is wrong with it unless it
// is a multiple of the interval within one interval of now.
func (o *once) check(headers map[string]any, now int64) (int64, error) {
	interval := o.interval()
	due, ok := dueOf(headers)
	switch {
	case !ok:
		return 0, fmt.Errorf("%w: the token has no integer %s header (Unix ms), it has %T", transport.ErrMalformed, dueHeader, headers[dueHeader])
	case due%interval != 0:
		return 0, fmt.Errorf("%w: the token's %s %d is not a multiple of the interval, %d ms", transport.ErrMalformed, dueHeader, due, interval)
	case due < now-interval || due > now+interval:
		return 0, fmt.Errorf("%w: the token's %s %d is more than one interval (%d ms) from now, %d", transport.ErrMalformed, dueHeader, due, interval, now)
	}
	return due, nil
}

// pass publishes the token due at next, then acks d. When the broker
// refuses it, a fresh token replaces it; d goes back to its queue only when
// the server drains before one is published, for the next instance.
func (o *once) pass(d transport.Delivery, next int64) {
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	err := o.publish(ctx, next)
	cancel()
	if err != nil {
		o.s.log.Error("hypha: could not pass on the timer's token; seeding a fresh one", "timer", o.t.name, "queue", o.queue, "due", next, "error", err)
		if err := o.reseed(); err != nil {
			_ = d.Nack(true)
			return
		}
	}
	if err := d.Ack(); err != nil {
		o.s.log.Warn("hypha: ack of the timer's token failed; it will come again", "timer", o.t.name, "error", err)
	}
}

// reseed publishes a fresh token, due at the next multiple of the interval,
// with a growing pause between attempts, until one is published or the
// server drains.
func (o *once) reseed() error {
	b := backoff.NewExponentialBackOff(backoff.WithInitialInterval(reseedStart), backoff.WithMaxInterval(reseedMax),
		backoff.WithMaxElapsedTime(0))
	return backoff.Retry(func() error {
		o.mu.Lock()
		last := o.lastDue
		o.mu.Unlock()
		ctx, cancel := context.WithTimeout(o.s.draining, publishTimeout)
		defer cancel()
		next := nextDue(last, time.Now().UnixMilli(), o.interval())
		err := o.publish(ctx, next)
		if err != nil && o.s.draining.Err() == nil {
			o.s.log.Error("hypha: could not seed a fresh token for the timer; trying again", "timer", o.t.name, "queue", o.queue, "due", next, "error", err)
		}
		return err
	}, backoff.WithContext(b, o.s.draining))
}

// refuse replaces a token that cannot be served (not one of ours, say) with
// a fresh one, so that the timer goes on.
func (o *once) refuse(d transport.Delivery, cause error) {
	o.s.log.Warn("hypha: timer token refused; a fresh one replaces it", "timer", o.t.name, "queue", o.queue, "error", cause)
	if p, ok := errors.AsType[*worker.PanicError](cause); ok {
		o.s.log.Error("hypha: timer token handling panicked", "timer", o.t.name, "panic", fmt.Sprint(p.Value))
	}
	o.mu.Lock()
	next := nextDue(o.lastDue, time.Now().UnixMilli(), o.interval())
	replaced := next <= o.fresh
	if !replaced {
		o.fresh = next
	}
	o.mu.Unlock()
	if replaced { // a fresh token of that due time is on its way already
		_ = d.Ack()
		return
	}
	o.pass(d, next)
}

// dueOf reads a token's due time, whatever integer type it arrived as.
func dueOf(headers map[string]any) (int64, bool) {
	v := reflect.ValueOf(headers[dueHeader])
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(min(v.Uint(), math.MaxInt64)), true
	}
	return 0, false
}
