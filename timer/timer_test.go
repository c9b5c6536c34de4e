package timer_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/timer"
)

func TestRegistrationErrors(t *testing.T) {
	t.Parallel()
	noop := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name     string
		register func(r *entrypoint.Registry)
		want     string
	}{
		{"zero interval", func(r *entrypoint.Registry) { timer.Handle(r, "t", 0, noop) }, "must be positive"},
		{"no name", func(r *entrypoint.Registry) { timer.Handle(r, "", time.Second, noop) }, "needs a name"},
		{"no function", func(r *entrypoint.Registry) { timer.Handle(r, "t", time.Second, nil) }, "has no function"},
		{"once too often", func(r *entrypoint.Registry) { timer.Handle(r, "t", time.Millisecond, noop, timer.Once()) }, "at least"},
		{"twice", func(r *entrypoint.Registry) {
			timer.Handle(r, "t", time.Second, noop)
			timer.Handle(r, "t", time.Second, noop)
		}, "registered twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := entrypoint.NewRegistry("svc")
			tc.register(r)
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// A tick that overruns its interval delays the next: ticks never overlap.
func TestTicksNeverOverlap(t *testing.T) {
	t.Parallel()
	var c counter
	in := start(t, "", "svc", func(r *entrypoint.Registry) {
		timer.Handle(r, "slow", 5*time.Millisecond, c.tick(30*time.Millisecond))
	})
	waitFor(t, "3 ticks", func() bool { return c.n.Load() >= 3 })
	in.Stop(time.Second)
	if m := c.most.Load(); m != 1 {
		t.Fatalf("%d ticks ran at once, want 1", m)
	}
}

// The ticks an overrun missed are not made up: after a tick that overran
// several intervals, the next starts at once and the ones after it an
// interval apart, not in a burst.
func TestMissedTicksAreNotMadeUp(t *testing.T) {
	t.Parallel()
	const interval = 20 * time.Millisecond
	var (
		mu     sync.Mutex
		starts []time.Time
	)
	in := start(t, "", "svc", func(r *entrypoint.Registry) {
		timer.Handle(r, "overrun", interval, func(ctx context.Context) error {
			mu.Lock()
			starts = append(starts, time.Now())
			n := len(starts)
			mu.Unlock()
			if n == 1 {
				time.Sleep(10 * interval) // misses ten ticks
			}
			return nil
		}, timer.Eager())
	})
	waitFor(t, "5 ticks", func() bool { mu.Lock(); defer mu.Unlock(); return len(starts) >= 5 })
	in.Stop(time.Second)
	mu.Lock()
	defer mu.Unlock()
	// The second tick follows the overrun at once; from the third on, a
	// tick starts no sooner than an interval after the last began (a busy
	// machine only widens the gaps).
	for i := 2; i < 5; i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < interval/2 {
			t.Fatalf("tick %d began %s after the one before, want an interval (%s): missed ticks were made up", i+1, gap, interval)
		}
	}
}

func TestEagerTicksAtStart(t *testing.T) {
	t.Parallel()
	var c counter
	start(t, "", "svc", func(r *entrypoint.Registry) {
		timer.Handle(r, "eager", time.Hour, c.tick(0), timer.Eager())
	})
	waitFor(t, "the eager tick", func() bool { return c.n.Load() == 1 })
}

// A stop does not wait for the interval; a running tick has its context
// cancelled once the grace period is over.
func TestStopIsPrompt(t *testing.T) {
	t.Parallel()
	var c counter
	cancelled := make(chan error, 1)
	in := start(t, "", "svc", func(r *entrypoint.Registry) {
		timer.Handle(r, "idle", time.Hour, c.tick(0))
		timer.Handle(r, "busy", time.Hour, func(ctx context.Context) error {
			<-ctx.Done()
			cancelled <- context.Cause(ctx)
			return ctx.Err()
		}, timer.Eager())
	})
	time.Sleep(20 * time.Millisecond)
	began := time.Now()
	in.Stop(50 * time.Millisecond)
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("stop took %s", took)
	}
	if cause := <-cancelled; !errors.Is(cause, entrypoint.ErrStopping) {
		t.Fatalf("the running tick's cause = %v, want ErrStopping", cause)
	}
}

// A tick runs with a call id of its own, and its failures and panics do not
// stop the timer.
func TestTickContextAndFailures(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	ids := make(chan []string, 10)
	start(t, "", "svc", func(r *entrypoint.Registry) {
		timer.Handle(r, "flaky", 5*time.Millisecond, func(ctx context.Context) error {
			ids <- contextdata.CallIDStack(ctx)
			switch n.Add(1) {
			case 1:
				return errors.New("disk on fire")
			case 2:
				panic("boom")
			}
			return nil
		})
	})
	waitFor(t, "3 ticks", func() bool { return n.Load() >= 3 })
	stack := <-ids
	if len(stack) != 1 || !strings.HasPrefix(stack[0], "svc.flaky.") {
		t.Fatalf("call id stack = %v, want [svc.flaky.<uuid>]", stack)
	}
}

func TestInterceptorsSeeTheTimer(t *testing.T) {
	t.Parallel()
	infos := make(chan entrypoint.Call, 10)
	reg := entrypoint.NewRegistry("svc")
	timer.Handle(reg, "tick", 5*time.Millisecond, func(context.Context) error { return nil }, timer.Eager())
	pool := worker.NewPool(1)
	srv := timer.NewServer(nil, reg, timer.ServerConfig{Service: "svc", Pool: pool, Logger: quiet,
		Interceptors: []entrypoint.Interceptor{func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
			select {
			case infos <- *call:
			default:
			}
			return next(ctx)
		}}})
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := <-infos
	_ = srv.Drain(context.Background())
	_ = pool.Wait(context.Background())
	_ = srv.Close()
	tm, _ := got.Spec.(*timer.Timer)
	if got.Kind != entrypoint.KindTimer || got.Client || got.Service != "svc" || got.Name != "tick" ||
		tm == nil || tm.EntrypointName() != "tick" || tm.Describe().Detail["interval"] != (5*time.Millisecond).String() {
		t.Fatalf("call = %+v, want the timer svc.tick", got)
	}
}
