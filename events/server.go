package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// Headers Hypha adds to events it retries or dead-letters.
const (
	// AttemptHeader counts deliveries of an event to one handler's queue: 1
	// for the first, 2 for the first retry, and so on.
	AttemptHeader = "x-hypha-attempt"
	// ErrorHeader holds why an event was dead-lettered.
	ErrorHeader = "x-hypha-error"
	// defaultHandlerTimeout is EVENTS.HANDLER_TIMEOUT's default: a handler
	// run's deadline.
	defaultHandlerTimeout = 60 * time.Second
	// settleTimeout bounds republishing an event for a retry or to the
	// dead-letter queue.
	settleTimeout = 30 * time.Second
	// requeuePause is how long an event whose retry or dead-letter copy could
	// not be published waits before going back to its queue.
	requeuePause = 5 * time.Second
	// maxErrorHeader bounds the error text a dead letter carries.
	maxErrorHeader = 1024
)

// DeadLetterQueueName is where the events a handler's queue gave up on go:
// "<queue>.dlq", durable.
func DeadLetterQueueName(queue string) string { return queue + ".dlq" }

// serverConfig says how a service handles its events.
type serverConfig struct {
	Service string
	// Pool runs the handlers; the service's RPC methods share it.
	Pool *worker.Pool
	// MaxRetries bounds retries of a failing event (RequeueOnError); 0
	// means none: the first failure dead-letters it (EVENTS.MAX_RETRIES's
	// default is 3: see config.DefaultSettings).
	MaxRetries int
	// RetryDelay paces those retries (EVENTS.RETRY_DELAY); its zero fields
	// are the defaults.
	RetryDelay         retryDelay
	ParentCallsTracked int
	Logger             *slog.Logger
	// Interceptors wrap every handler run, the first outermost.
	Interceptors []entrypoint.Interceptor
	// HandlerTimeout is each handler run's deadline; 60 s
	// (EVENTS.HANDLER_TIMEOUT's default) when zero.
	HandlerTimeout time.Duration
	// Prefetches are the prefetches of the handlers' queues, in registration
	// order; a handler without one gets the pool's size.
	Prefetches []int
	// NamekoQueues (EVENTS.NAMEKO_QUEUES) declares the handlers' queues
	// exactly as nameko does, without the dead-letter arguments of
	// eventHandler.queue, for a fleet where nameko services consume them too
	// (RabbitMQ refuses to declare a queue again with other arguments).
	// An event such a queue cannot hand over whole is then not kept whole.
	NamekoQueues bool
	// OnDeadLetter, when set, is called for each event dead-lettered, with
	// how: deadLetterCopy, deadLetterWhole or deadLetterRecord.
	OnDeadLetter func(handler, event, how string)
}

// prefetch is the prefetch of the i-th handler's queue.
func (s *server) prefetch(i int) int {
	if i < len(s.cfg.Prefetches) {
		return s.cfg.Prefetches[i]
	}
	return s.cfg.Pool.Size()
}

// server consumes the queues of a service's event handlers.
type server struct {
	broker    transport.Broker
	cfg       serverConfig
	handlers  []*eventHandler
	log       *slog.Logger
	consumers []*entrypoint.Consumer
	// whole says which handlers' queues the broker dead-letters rejected
	// events of; written by Start before the first consumer starts, read
	// only after.
	whole map[*eventHandler]bool
	// draining ends with Drain: it cuts short the pause before a requeue.
	draining context.Context
	drain    context.CancelFunc
}

// newServer returns a server for the handlers registered in r.
func newServer(broker transport.Broker, r *entrypoint.Registry, cfg serverConfig) *server {
	if cfg.Pool == nil {
		cfg.Pool = worker.NewPool(10)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = defaultHandlerTimeout
	}
	s := &server{broker: broker, cfg: cfg, handlers: entrypoint.Of[*eventHandler](r), log: cfg.Logger, whole: map[*eventHandler]bool{}}
	s.draining, s.drain = context.WithCancel(context.Background())
	return s
}

// Start declares each handler's exchange, its dead-letter queue, its queue
// and binding (see eventHandler.queue and declareQueue) and, with RequeueOnError,
// its delay queues (see retryDelay), and starts consuming with prefetch =
// the pool's size.
func (s *server) Start(ctx context.Context) error {
	if err := s.cfg.RetryDelay.validate(); err != nil {
		return err
	}
	// Every queue is declared before any consumer starts, so that s.whole
	// is only read once written.
	for _, h := range s.handlers {
		if err := s.declare(ctx, h); err != nil {
			return err
		}
	}
	for i, h := range s.handlers {
		queue := h.queue(s.cfg.Service).Name
		c := entrypoint.NewConsumer(s.broker, entrypoint.ConsumerConfig{
			Queue: queue, Pool: s.cfg.Pool, Prefetch: s.prefetch(i), Logger: s.log,
			Label:  func(transport.Delivery) string { return s.cfg.Service + "." + h.name },
			Serve:  func(ctx context.Context, d transport.Delivery) { s.serve(ctx, h, queue, d) },
			Refuse: func(d transport.Delivery, err error) { s.refuse(h, d, err) },
		})
		if err := c.Start(ctx); err != nil {
			return err
		}
		s.consumers = append(s.consumers, c)
	}
	return nil
}

// declare declares a handler's exchange, its dead-letter queue, its queue
// and its delay queues.
func (s *server) declare(ctx context.Context, h *eventHandler) error {
	q := h.queue(s.cfg.Service)
	if err := s.broker.DeclareExchange(ctx, transport.Exchange{Name: ExchangeName(h.source), Kind: transport.Topic, Durable: true}); err != nil {
		return err
	}
	// Declared first, so that a queue of that name the broker refuses
	// stops the start instead of bouncing failed events, and so that
	// the handler's queue never dead-letters to a queue not there.
	if err := s.broker.DeclareQueue(ctx, transport.Queue{Name: deadLetterQueue(h, s.cfg.Service), Durable: true}); err != nil {
		return err
	}
	whole, err := s.declareQueue(ctx, q)
	if err != nil {
		return err
	}
	s.whole[h] = whole
	return s.declareDelays(ctx, h, q)
}

// declareDelays declares the delay queues the retries of a RequeueOnError
// handler wait in: one per distinct delay up to MaxRetries.
func (s *server) declareDelays(ctx context.Context, h *eventHandler, q transport.Queue) error {
	if !h.requeue {
		return nil
	}
	declared := map[string]bool{}
	for attempt := 1; attempt <= s.cfg.MaxRetries; attempt++ {
		dq := s.cfg.RetryDelay.queue(q, attempt)
		if declared[dq.Name] {
			continue
		}
		if err := s.broker.DeclareQueue(ctx, dq); err != nil {
			return err
		}
		declared[dq.Name] = true
	}
	return nil
}

// Stop stops taking events (Drain), waits for running handlers (bounded by
// ctx), then closes the consumers (Close); events not finished go back to
// their queues.
func (s *server) Stop(ctx context.Context) error {
	return errors.Join(s.Drain(ctx), s.cfg.Pool.Wait(ctx), s.Close())
}

// Drain stops taking new events; handlers already running go on, and events
// received but not started go back to their queues.
func (s *server) Drain(ctx context.Context) error {
	s.drain()
	var errs []error
	for _, c := range s.consumers {
		errs = append(errs, c.Drain(ctx))
	}
	return errors.Join(errs...)
}

// Close closes the consumers; unacked events go back to their queues.
func (s *server) Close() error {
	var errs []error
	for _, c := range s.consumers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// serve runs the handler on one event and settles it: ack on success; on
// failure a retry or the dead-letter queue, published before the ack. A
// panic outside the handler (decoding the payload, say) reaches the worker,
// which refuses the event.
func (s *server) serve(ctx context.Context, h *eventHandler, queue string, d transport.Delivery) {
	attempt := attemptOf(d.Headers)
	id := fmt.Sprintf("%s.%s.%s", s.cfg.Service, h.name, uuid.NewString())
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HandlerTimeout)
	defer cancel()
	ctx = contextdata.Incoming(ctx, d.Headers, id, s.cfg.ParentCallsTracked+1)
	ctx = WithDelivery(ctx, d.MessageID, attempt)
	ev := &EventInfo{
		Source: h.source, EventType: h.eventType, MessageID: d.MessageID, Exchange: ExchangeName(h.source),
		RoutingKey: h.eventType, BodySize: len(d.Body), Headers: d.Headers,
		Service: s.cfg.Service, Handler: h.name, Queue: queue, Attempt: attempt,
	}
	// Decoding runs inside the interceptors, so a payload that does not
	// decode is traced and counted like any failed run.
	var undecodable error
	err := entrypoint.Intercept(s.cfg.Interceptors, ev.handlerCall(), func(ctx context.Context) error {
		payload, err := h.decode(d.Body)
		if err != nil {
			undecodable = err
			return err
		}
		return s.run(ctx, h, payload)
	})(ctx)
	switch {
	case err == nil:
		if err := d.Ack(); err != nil {
			s.log.Warn("hypha: ack failed; the event will come again", "handler", h.name, "error", err)
		}
	case undecodable != nil:
		s.deadLetter(h, d, attempt, undecodable) // retrying cannot help
	case entrypoint.Interrupted(ctx, err) || entrypoint.Lost(d):
		// Stopping or lost: the event runs again, here or elsewhere.
		s.log.WarnContext(ctx, "hypha: event handler gave up; the event goes back to its queue", "handler", h.name,
			"message_id", d.MessageID, "cause", context.Cause(ctx), "error", err)
		_ = d.Nack(true)
	default:
		level := slog.LevelError
		if ctx.Err() != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
			level = slog.LevelWarn // its deadline, EVENTS.HANDLER_TIMEOUT: a timeout, not a crash
		}
		s.log.Log(ctx, level, "hypha: event handler failed", "handler", h.name, "event", h.eventType,
			"message_id", d.MessageID, "attempt", attempt, "error", err)
		if h.requeue && attempt <= s.cfg.MaxRetries {
			s.retry(h, d, attempt)
			return
		}
		s.deadLetter(h, d, attempt, err)
	}
}

func (s *server) run(ctx context.Context, h *eventHandler, payload any) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "hypha: event handler panicked", "handler", h.name, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return h.call(ctx, payload)
}

type deliveryKey struct{}

// delivery is what a handler's context knows of the event it handles.
type delivery struct {
	messageID string
	attempt   int
}

// MessageID is the message_id of the event a handler's ctx is handling ("" when
// the dispatcher sent none, as nameko's does not): the same for every delivery
// of one dispatch, so handlers can drop duplicates by it.
func MessageID(ctx context.Context) string {
	d, _ := ctx.Value(deliveryKey{}).(delivery)
	return d.messageID
}

// Attempt is how often the event a handler's ctx is handling has been
// delivered to this handler: 1 the first time, 2 on the first retry, ...
func Attempt(ctx context.Context) int {
	d, _ := ctx.Value(deliveryKey{}).(delivery)
	return d.attempt
}

// WithDelivery returns a context that says it handles the event messageID, at
// its attempt-th delivery, as a handler's context does: MessageID and Attempt
// read them back. It is for tests that call a handler directly.
func WithDelivery(ctx context.Context, messageID string, attempt int) context.Context {
	return context.WithValue(ctx, deliveryKey{}, delivery{messageID: messageID, attempt: attempt})
}

// attemptOf reads the attempt count of a delivery, whatever number type the
// header arrived as (see worker.HeaderCount): 1 when it has none.
func attemptOf(headers map[string]any) int {
	return max(worker.HeaderCount(headers[AttemptHeader]), 1)
}
