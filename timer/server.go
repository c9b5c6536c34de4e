package timer

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// serverConfig says how a service runs its timers.
type serverConfig struct {
	Service string
	// Pool runs the ticks; the service's other entrypoints share it.
	Pool               *worker.Pool
	ParentCallsTracked int
	Logger             *slog.Logger
	// Interceptors wrap every tick, the first outermost; the Spec of their
	// entrypoint.Call is the *Timer that ticks.
	Interceptors []entrypoint.Interceptor
}

// server runs the timers registered in a service's registry.
type server struct {
	broker transport.Broker
	cfg    serverConfig
	timers []*Timer
	log    *slog.Logger

	onces []*once
	// draining ends with Drain: no tick starts after it.
	draining context.Context
	drain    context.CancelFunc
	wg       sync.WaitGroup
}

// newServer returns a server for the timers registered in r; broker carries
// the tokens of Once timers and may be nil when there are none.
func newServer(broker transport.Broker, r *entrypoint.Registry, cfg serverConfig) *server {
	if cfg.Pool == nil {
		cfg.Pool = worker.NewPool(10)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{broker: broker, cfg: cfg, timers: entrypoint.Of[*Timer](r), log: cfg.Logger}
	s.draining, s.drain = context.WithCancel(context.Background())
	return s
}

// Start starts every timer: Once timers declare their queues, seed a token
// and consume; the others start ticking on this instance.
func (s *server) Start(ctx context.Context) error {
	for _, t := range s.timers {
		if !t.once {
			continue
		}
		o := newOnce(s, t)
		if err := o.start(ctx); err != nil {
			return err
		}
		s.onces = append(s.onces, o)
	}
	for _, t := range s.timers {
		if !t.once {
			s.wg.Add(1)
			go s.loop(t)
		}
	}
	return nil
}

// Drain stops ticking: no tick starts after it; running ones go on.
func (s *server) Drain(ctx context.Context) error {
	s.drain()
	var first error
	for _, o := range s.onces {
		if err := o.consumer.Drain(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Close stops ticking and releases the consumers of Once timers; a token
// whose tick has not finished goes back to its queue for another instance.
func (s *server) Close() error {
	s.drain()
	var first error
	for _, o := range s.onces {
		if err := o.consumer.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.wg.Wait()
	return first
}

// loop ticks t on this instance until Drain. It waits for each tick to end
// before it counts the interval from the tick's start, so that ticks never
// overlap and one that overran is followed at once, without a pile-up.
func (s *server) loop(t *Timer) {
	defer s.wg.Done()
	next := time.Now().Add(t.interval)
	if t.eager {
		next = time.Now()
	}
	wait := time.NewTimer(time.Until(next))
	defer wait.Stop()
	for {
		select {
		case <-wait.C:
		case <-s.draining.Done():
			return
		}
		start := time.Now()
		done := make(chan struct{})
		if err := s.cfg.Pool.Go(s.draining, s.label(t), func(ctx context.Context) {
			defer close(done)
			s.run(ctx, t)
		}); err != nil {
			return // draining
		}
		select {
		case <-done:
		case <-s.draining.Done():
			return // the pool's stop waits for the tick
		}
		wait.Reset(max(time.Until(start.Add(t.interval)), 0))
	}
}

func (s *server) label(t *Timer) string { return s.cfg.Service + "." + t.name }

// run runs one tick of t in a worker: with context data of its own, inside
// the interceptors; a panic in fn becomes its error. It returns fn's error.
func (s *server) run(ctx context.Context, t *Timer) error {
	id := fmt.Sprintf("%s.%s.%s", s.cfg.Service, t.name, uuid.NewString())
	ctx = contextdata.Incoming(ctx, nil, id, s.cfg.ParentCallsTracked+1)
	call := &entrypoint.Call{Kind: entrypoint.KindTimer, Service: s.cfg.Service, Name: t.name, Spec: t}
	err := entrypoint.Intercept(s.cfg.Interceptors, call, func(ctx context.Context) error {
		return s.call(ctx, t)
	})(ctx)
	switch {
	case err == nil:
	case entrypoint.Interrupted(ctx, err):
		s.log.WarnContext(ctx, "hypha: timer tick cancelled", "timer", t.name, "cause", context.Cause(ctx), "error", err)
	default:
		s.log.ErrorContext(ctx, "hypha: timer tick failed", "timer", t.name, "error", err)
	}
	return err
}

func (s *server) call(ctx context.Context, t *Timer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.ErrorContext(ctx, "hypha: timer panicked", "timer", t.name, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = &worker.PanicError{Value: p}
		}
	}()
	return t.fn(ctx)
}
