// Package timer runs a function of a service every interval: nameko's @timer,
// plus Once, which runs it once per interval across every instance of the
// service.
//
//	func (s *Reports) Register(r *entrypoint.Registry) {
//		timer.Handle(r, "cleanup", time.Minute, s.Cleanup)                 // on every instance
//		timer.Handle(r, "digest", time.Hour, s.SendDigest, timer.Once()) // on one instance per hour
//	}
//
// A tick runs in a worker of the service's pool, with context data of its own
// (its call id is "<service>.<timer>.<uuid>", which the calls it makes carry
// on), inside the app's entrypoint.Interceptors, traced and counted. Two ticks
// of one timer never run at once: a tick that overruns its interval delays the
// next, and missed ticks are not made up. On stop no new tick starts; a running
// one gets GRACE_PERIOD, then its context is cancelled.
package timer

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
)

// minOnceInterval is the shortest interval of a Once timer: its token travels
// through the broker between ticks.
const minOnceInterval = 10 * time.Millisecond

// Func is a timer's work. A returned error is logged and counted; the timer
// goes on.
type Func func(ctx context.Context) error

// Timer is a registered timer: the entrypoint Handle adds to a service's
// registry.
type Timer struct {
	name     string
	interval time.Duration
	fn       Func
	eager    bool
	once     bool
}

// EntrypointName is the timer's name, unique within its service.
func (t *Timer) EntrypointName() string { return t.name }

// Describe describes the timer: its interval (as Go writes a duration, and
// in seconds), whether it is Once and whether it is Eager.
func (t *Timer) Describe() entrypoint.Description {
	return entrypoint.Description{Kind: entrypoint.KindTimer, Name: t.name, Detail: map[string]any{
		"interval": t.interval.String(), "interval_seconds": t.interval.Seconds(), "once": t.once, "eager": t.eager,
	}}
}

// Option configures a timer registered with Handle.
type Option interface {
	apply(*Timer)
	String() string
}

type option struct {
	name string
	fn   func(*Timer)
}

func (o option) apply(t *Timer) { o.fn(t) }
func (o option) String() string { return o.name }

// Eager runs the first tick at start rather than one interval after (nameko's
// eager=True). For a Once timer it runs at start the tick of the interval
// under way, unless the instance holding the token has run it already.
func Eager() Option { return option{"timer.Eager()", func(t *Timer) { t.eager = true }} }

// Once runs the timer once per interval across all instances of the service,
// rather than on each: the instance holding the timer's token runs the tick.
//
// The token is a message on the durable queue "timer-<service>.<timer>",
// which has a single active consumer (x-single-active-consumer): the broker
// hands it to one instance at a time. That instance runs the tick, then
// publishes the next token through the delay queue "timer-<service>.<timer>.delay"
// (whose per-message TTL dead-letters it back when due) and acks the one it
// held. When the instance dies or stops mid-tick, the unacked token goes to
// the next consumer, which runs the tick again: a tick runs at least once,
// and twice only when its instance was lost while running it.
//
// Ticks fall due on multiples of the interval since the Unix epoch, so every
// instance computes the same due times. Each instance seeds a token when it
// starts; the active one runs each due time once and drops the tokens of a
// due time it has run, so the seeds merge into one. A token is not trusted:
// one whose due time is missing, not a multiple of the interval, or more than
// an interval from now is replaced by a fresh one, with a warning, so that no
// token can make the timer tick more than once per interval. A token that
// cannot be passed on is logged at error and a fresh one seeded, with
// pauses, until the broker takes one.
func Once() Option { return option{"timer.Once()", func(t *Timer) { t.once = true }} }

// Handle registers fn to run every interval under name, with opts. A
// non-positive interval (or one under 10 ms for Once) is a
// registration error, and so is an empty name.
func Handle(r *entrypoint.Registry, name string, interval time.Duration, fn Func, opts ...Option) {
	t := &Timer{name: name, interval: interval, fn: fn}
	for _, o := range opts {
		o.apply(t)
	}
	switch {
	case name == "":
		r.Fail(fmt.Errorf("service %q: a timer needs a name", r.Service()))
	case fn == nil:
		r.Fail(fmt.Errorf("service %q: timer %q has no function", r.Service(), name))
	case interval <= 0:
		r.Fail(fmt.Errorf("service %q: timer %q: interval %s must be positive", r.Service(), name, interval))
	case t.once && interval < minOnceInterval:
		r.Fail(fmt.Errorf("service %q: timer %q: interval %s of a timer.Once() must be at least %s", r.Service(), name, interval, minOnceInterval))
	default:
		r.Add(t)
	}
}
