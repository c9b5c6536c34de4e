package timer_test

import (
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/timer"
)

// Two instances of a service with a Once timer: one ticks, the other waits;
// when the ticking one dies mid-tick, the other takes over, running the
// interrupted tick again.
func TestOnceTakesOverFromALostInstance(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			uri := b.uri(t)
			const interval = 50 * time.Millisecond
			var first, second counter
			a := start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, first.tick(interval/2), timer.Once())
			})
			start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, second.tick(interval/2), timer.Once())
			})
			waitFor(t, "3 ticks", func() bool { return first.n.Load() >= 3 })
			if n := second.n.Load(); n != 0 {
				t.Fatalf("the second instance ticked %d times while the first held the token", n)
			}
			waitFor(t, "a tick under way", func() bool { return first.running.Load() == 1 })
			a.Kill()
			waitFor(t, "3 ticks on the second instance", func() bool { return second.n.Load() >= 3 })
		})
	}
}

// Every instance seeds a token when it starts; the seeds merge, so that the
// timer ticks once per interval however many instances started.
func TestOnceSeedsMerge(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			uri := b.uri(t)
			const interval = 100 * time.Millisecond
			var c counter
			for range 3 {
				start(t, uri, "svc", func(r *entrypoint.Registry) {
					timer.Handle(r, "beat", interval, c.tick(0), timer.Once(), timer.Eager())
				})
			}
			time.Sleep(interval) // the seeds are all due by now
			before := c.n.Load()
			time.Sleep(10 * interval)
			// Unmerged, three tokens would tick about 30 times.
			if n := c.n.Load() - before; n > 15 {
				t.Fatalf("%d ticks in 10 intervals: the instances' tokens did not merge", n)
			}
			if m := c.most.Load(); m != 1 {
				t.Fatalf("%d ticks ran at once across the instances, want 1", m)
			}
		})
	}
}

// A stopping instance's tick gets its grace period; the token goes on to the
// next instance, which ticks on.
func TestOnceHandsOverOnStop(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			uri := b.uri(t)
			const interval = 50 * time.Millisecond
			var first, second counter
			a := start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, first.tick(0), timer.Once())
			})
			waitFor(t, "a tick", func() bool { return first.n.Load() >= 1 })
			start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, second.tick(0), timer.Once())
			})
			a.Stop(time.Second)
			waitFor(t, "2 ticks on the second instance", func() bool { return second.n.Load() >= 2 })
		})
	}
}
