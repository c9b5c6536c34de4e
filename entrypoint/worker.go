package entrypoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"

	"github.com/hypha-go/hypha/internal/ctxwire"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// Causes of a worker's context ending (context.Cause) other than its deadline.
var (
	// ErrStopping: the stop's grace period is over.
	ErrStopping = worker.ErrStopping
	// ErrLost: the connection that delivered the message is gone, and the
	// broker will deliver it again.
	ErrLost = errors.New("hypha: the delivery was lost with its connection")
)

// Abandoned reports whether a worker's ctx ended because the service is
// stopping or the delivery was lost: the message goes back to its queue and
// runs again, so the work must neither answer nor count as a failure.
func Abandoned(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return errors.Is(cause, ErrStopping) || errors.Is(cause, ErrLost)
}

// Interrupted reports whether work that ended with err was cut short by
// the service stopping or by a lost broker connection: Abandoned(ctx), or
// err says a lost connection left a message's fate unknown
// (transport.ErrUncertain). A delivery's worker then settles it by putting
// it back on its queue, unanswered, and logs at warn: the run that follows
// answers, and a failover is no failure an operator must act on.
func Interrupted(ctx context.Context, err error) bool {
	return err != nil && (Abandoned(ctx) || errors.Is(err, transport.ErrUncertain) || errors.Is(err, ErrLost))
}

// Lost reports whether d can no longer be settled because the connection
// that carried it is gone, even before its worker's context hears of it.
func Lost(d transport.Delivery) bool {
	if d.Lost == nil {
		return false
	}
	select {
	case <-d.Lost:
		return true
	default:
		return false
	}
}

// ErrSettled is returned when a delivery is acked or nacked a second time.
var ErrSettled = errors.New("hypha: delivery already settled")

// ConsumerConfig says which queue a Consumer takes deliveries from and how it
// handles them.
type ConsumerConfig struct {
	Queue string
	// Pool runs the workers.
	Pool *worker.Pool
	// Prefetch is the most deliveries the broker hands over before they are
	// settled; the pool's size when zero. The prefetches of one service's
	// consumers should add up to its pool's size (see Service.Prefetches).
	Prefetch int
	Logger   *slog.Logger
	// Label names the work a delivery is, for the log of a stop that had to
	// leave workers running; the queue's name when nil.
	Label func(d transport.Delivery) string
	// Serve handles a delivery and settles it: acks it, or nacks it. Its ctx
	// is cancelled when the stop's grace period is over and when the
	// delivery, not acked yet, is lost with its connection (the broker
	// will deliver it again); it has no deadline of its own.
	Serve func(ctx context.Context, d transport.Delivery)
	// Refuse settles a delivery that cannot be served, with an error reply
	// or a dead letter, and never requeues it: err says why. It is called
	// for a delivery the transport flagged Malformed, one whose headers or
	// context data are over their bounds, and one whose Serve panicked
	// (err then says "panic: <value>"; the stack is logged, never sent).
	Refuse func(d transport.Delivery, err error)
}

// Consumer is the one path every delivery of a service takes, whatever its
// entrypoint: it is taken from the queue, run in a worker of the service's
// pool, and settled. A panic anywhere on that path is recovered there, with
// its stack logged; the delivery is refused, never requeued, so that one bad
// message cannot crash-loop every instance of a service.
type Consumer struct {
	broker   transport.Broker
	cfg      ConsumerConfig
	consumer transport.Consumer
	// draining ends with Drain: no worker starts after it.
	draining context.Context
	drain    context.CancelFunc
}

// NewConsumer returns a consumer of cfg.Queue on broker; Start starts it.
func NewConsumer(broker transport.Broker, cfg ConsumerConfig) *Consumer {
	if cfg.Pool == nil {
		cfg.Pool = worker.NewPool(1)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = cfg.Pool.Size()
	}
	if cfg.Label == nil {
		cfg.Label = func(transport.Delivery) string { return cfg.Queue }
	}
	c := &Consumer{broker: broker, cfg: cfg}
	c.draining, c.drain = context.WithCancel(context.Background())
	return c
}

// Start starts consuming.
func (c *Consumer) Start(ctx context.Context) error {
	tc, err := c.broker.Consume(ctx, transport.ConsumeOptions{Queue: c.cfg.Queue, Prefetch: c.cfg.Prefetch}, c.dispatch)
	if err != nil {
		return err
	}
	c.consumer = tc
	return nil
}

// Drain stops taking new deliveries; workers already running go on, and
// deliveries received but not started go back to the queue.
func (c *Consumer) Drain(ctx context.Context) error {
	c.drain()
	if c.consumer == nil {
		return nil
	}
	return c.consumer.Cancel(ctx)
}

// Close closes the consumer; unsettled deliveries go back to the queue.
func (c *Consumer) Close() error {
	if c.consumer == nil {
		return nil
	}
	return c.consumer.Close()
}

// dispatch hands a delivery to a worker; it blocks while every worker is
// busy, and while the process's budget has no room for the delivery's body.
func (c *Consumer) dispatch(d transport.Delivery) {
	d.Acknowledger = &settleOnce{a: d.Acknowledger}
	if err := c.cfg.Pool.GoSized(c.draining, c.cfg.Label(d), len(d.Body), func(ctx context.Context) { c.work(ctx, d) }); err != nil {
		_ = d.Nack(true)
	}
}

// work serves or refuses d and makes sure it ends settled.
func (c *Consumer) work(ctx context.Context, d transport.Delivery) {
	defer c.settleLeftover(d)
	if err := check(d); err != nil {
		c.refuse(d, err)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			pe := &worker.PanicError{Value: p, Stack: debug.Stack()}
			c.cfg.Logger.Error("hypha: worker panicked", "queue", c.cfg.Queue, "panic", fmt.Sprint(p), "stack", string(pe.Stack))
			if !settled(d) {
				c.refuse(d, pe)
			}
		}
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if d.Lost != nil {
		go func() {
			select {
			case <-d.Lost:
				// A delivery the broker took the ack of will not come
				// again: its work goes on (a raw RPC method that acked
				// early).
				if !acked(d) {
					cancel(ErrLost)
				}
			case <-ctx.Done():
			}
		}()
	}
	c.cfg.Serve(ctx, d)
}

// refuse runs Refuse; should it panic in turn, the delivery is dropped
// rather than requeued, since it would only come back to do the same.
func (c *Consumer) refuse(d transport.Delivery, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.cfg.Logger.Error("hypha: refusing a delivery panicked; dropping it", "queue", c.cfg.Queue,
				"message_id", d.MessageID, "correlation_id", d.CorrelationID, "cause", err, "panic", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			_ = d.Nack(false)
		}
	}()
	c.cfg.Refuse(d, err)
}

// settleLeftover drops a delivery that its handling left unsettled.
func (c *Consumer) settleLeftover(d transport.Delivery) {
	if !settled(d) {
		c.cfg.Logger.Error("hypha: delivery left unsettled; dropping it", "queue", c.cfg.Queue,
			"message_id", d.MessageID, "correlation_id", d.CorrelationID)
		_ = d.Nack(false)
	}
}

// acked reports whether d was acked and the ack went out.
func acked(d transport.Delivery) bool {
	s, ok := d.Acknowledger.(*settleOnce)
	return ok && s.acked.Load()
}

func settled(d transport.Delivery) bool {
	s, ok := d.Acknowledger.(*settleOnce)
	return !ok || s.done.Load()
}

// check refuses what no entrypoint should work on: a message the transport
// could not hand over whole, too many headers, too much context data.
func check(d transport.Delivery) error {
	if d.Malformed != nil {
		return d.Malformed
	}
	if n := len(d.Headers); n > worker.MaxHeaders {
		return fmt.Errorf("%w: %d headers, over the limit of %d", transport.ErrMalformed, n, worker.MaxHeaders)
	}
	if err := ctxwire.Check(d.Headers); err != nil {
		return fmt.Errorf("%w: %v", transport.ErrMalformed, err)
	}
	return nil
}

// settleOnce lets a delivery be settled once; later calls fail with ErrSettled.
type settleOnce struct {
	a     transport.Acknowledger
	done  atomic.Bool
	acked atomic.Bool // Ack went out without an error
}

func (s *settleOnce) Ack() error {
	if !s.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	err := s.a.Ack()
	s.acked.Store(err == nil)
	return err
}

func (s *settleOnce) Nack(requeue bool) error {
	if !s.done.CompareAndSwap(false, true) {
		return ErrSettled
	}
	return s.a.Nack(requeue)
}
