package framework

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.uber.org/fx"
)

// drainTimeout bounds waiting for the broker to confirm that a consumer was
// cancelled; it is not part of the grace period.
const drainTimeout = 2 * time.Second

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

// stop drains the services in waves, callers before the services they call,
// waits for each wave's workers, then closes them all.
func (r *runtimes) stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.grace)
	defer cancel()
	r.mu.Lock()
	started := slices.Clone(r.started)
	r.mu.Unlock()
	var errs []error
	for remaining := slices.Clone(started); len(remaining) > 0; {
		wave := callersFirst(remaining)
		if ctx.Err() != nil {
			wave = remaining // out of time: stop the rest at once
		}
		for _, rt := range wave {
			errs = append(errs, rt.drain(ctx))
		}
		errs = append(errs, waitAll(ctx, wave)...)
		remaining = slices.DeleteFunc(remaining, func(rt *serviceRuntime) bool { return slices.Contains(wave, rt) })
	}
	for _, rt := range started {
		errs = append(errs, rt.close())
		rt.log.Info("hypha: service stopped")
	}
	return errors.Join(errs...)
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

// waitAll waits, in parallel and bounded by ctx, for the workers of every
// service in wave, and names those that did not finish.
func waitAll(ctx context.Context, wave []*serviceRuntime) []error {
	errs := make([]error, len(wave))
	var wg sync.WaitGroup
	for i, rt := range wave {
		wg.Go(func() {
			if err := rt.pool.Wait(ctx); err != nil {
				rt.log.Warn("hypha: grace period over before every worker finished; unfinished work goes back to its queue",
					"busy", rt.pool.Busy())
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errs
}
