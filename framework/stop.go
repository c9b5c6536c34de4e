package framework

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.uber.org/fx"
)

// drainTimeout bounds waiting for the broker to confirm that a consumer was
// cancelled; it is not part of the grace period.
const drainTimeout = 2 * time.Second

// cancelWait is how long workers still running when GRACE_PERIOD is over get
// to return once their contexts are cancelled.
const cancelWait = time.Second

// runtimes are the app's started services. They stop together, in one
// GRACE_PERIOD, before the connection closes: a service stops taking work
// once every service of the app that calls it has finished its own, so calls
// between services of one process are still answered while they stop.
type runtimes struct {
	grace time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	started []*serviceRuntime
}

// newRuntimes hooks the services' stop in after the connection's, so that it
// runs before the connection closes.
func newRuntimes(lc fx.Lifecycle, _ *connection, cfg Config, log *slog.Logger) *runtimes {
	r := &runtimes{grace: cfg.GracePeriod, log: log}
	lc.Append(fx.Hook{OnStop: r.stop})
	return r
}

func (r *runtimes) add(rt *serviceRuntime) {
	r.mu.Lock()
	r.started = append(r.started, rt)
	r.mu.Unlock()
}

// ready is nil when every started service is ready, or says which is not
// and why.
func (r *runtimes) ready() error {
	r.mu.Lock()
	started := slices.Clone(r.started)
	r.mu.Unlock()
	for _, rt := range started {
		if err := rt.ready(); err != nil {
			return err
		}
	}
	return nil
}

// stop drains the services in waves, callers before the services they call,
// waits for each wave's workers, then closes them all. Workers still running
// when GRACE_PERIOD is over have their contexts cancelled and get
// cancelWait more; a stop that ran over logs one warning naming the work
// still running, and is not an error: its work goes back to its queue.
// Nothing here fails the stop: what goes wrong is logged.
func (r *runtimes) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.grace)
	defer cancel()
	r.mu.Lock()
	started := slices.Clone(r.started)
	r.mu.Unlock()
	var (
		overran      bool
		stillRunning []string
	)
	for remaining := slices.Clone(started); len(remaining) > 0; {
		wave := callersFirst(remaining)
		if ctx.Err() != nil {
			wave = remaining // out of time: stop the rest at once
		}
		for _, rt := range wave {
			if err := rt.drain(ctx); err != nil {
				rt.log.Warn("hypha: stopping the consumers", "error", err)
			}
		}
		late, over := finishAll(ctx, wave)
		overran = overran || over
		stillRunning = append(stillRunning, late...)
		remaining = slices.DeleteFunc(remaining, func(rt *serviceRuntime) bool { return slices.Contains(wave, rt) })
	}
	if overran {
		r.log.Warn("hypha: grace period over; running workers were cancelled and their work goes back to its queue",
			"grace_period", r.grace, "still_running", stillRunning)
	}
	for _, rt := range started {
		if err := rt.close(); err != nil {
			rt.log.Warn("hypha: closing the service", "error", err)
		}
		rt.log.Info("hypha: service stopped")
	}
	return nil
}

// callersFirst returns the services of remaining that no other service of
// remaining calls, or all of them when they call each other in a circle.
func callersFirst(remaining []*serviceRuntime) []*serviceRuntime {
	var wave []*serviceRuntime
	for _, rt := range remaining {
		called := slices.ContainsFunc(remaining, func(other *serviceRuntime) bool {
			return other != rt && slices.Contains(other.calls, rt.name)
		})
		if !called {
			wave = append(wave, rt)
		}
	}
	if len(wave) == 0 {
		return remaining
	}
	return wave
}

// finishAll waits, in parallel and bounded by ctx, for the workers of every
// service in wave, then cancels those still running (see the pool's Finish).
// It returns the work still running after that, and whether any had to be cancelled.
func finishAll(ctx context.Context, wave []*serviceRuntime) (stillRunning []string, overran bool) {
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, rt := range wave {
		wg.Go(func() {
			late, over := rt.pool.Finish(ctx, cancelWait)
			mu.Lock()
			defer mu.Unlock()
			stillRunning = append(stillRunning, late...)
			overran = overran || over
		})
	}
	wg.Wait()
	return stillRunning, overran
}
