package timer_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/timer"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// Two instances of a service with a Once timer: one ticks, the other waits;
// when the ticking one dies mid-tick, the other takes over, running the
// interrupted tick again: its first tick falls in the interval of the tick
// that was lost, rather than in the next.
func TestOnceTakesOverFromALostInstance(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			uri := b.uri(t)
			// Long enough that the token's redelivery, well under half of
			// it, cannot carry the tick run again into the next interval.
			const interval = time.Second
			ms := interval.Milliseconds()
			var first, second counter
			a := start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, first.tick(interval/2), timer.Once(), timer.Eager())
			})
			start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, second.tick(interval/2), timer.Once())
			})
			waitFor(t, "2 ticks", func() bool { return first.n.Load() >= 2 })
			if n := second.n.Load(); n != 0 {
				t.Fatalf("the second instance ticked %d times while the first held the token", n)
			}
			waitFor(t, "a tick under way", func() bool { return first.running.Load() == 1 })
			lost := first.latest.Load()
			a.Kill()
			waitFor(t, "a tick on the second instance", func() bool { return second.n.Load() >= 1 })
			if got, want := second.first.Load()/ms, lost/ms; got != want {
				t.Fatalf("the second instance's first tick fell %d intervals after the lost one, want in the same: the interrupted tick was not run again", got-want)
			}
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

// A stopping instance's tick gets its grace period: it runs to its end, its
// context not cancelled, before the stop returns; the token goes on to the
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
				timer.Handle(r, "beat", interval, first.tick(4*interval), timer.Once())
			})
			start(t, uri, "svc", func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, second.tick(0), timer.Once())
			})
			waitFor(t, "a tick under way", func() bool { return first.running.Load() == 1 })
			a.Stop(5 * time.Second)
			if n := first.running.Load(); n != 0 {
				t.Fatalf("%d ticks still running after the stop: it did not wait for them", n)
			}
			if n := first.cancelled.Load(); n != 0 {
				t.Fatalf("%d ticks cancelled within their grace period", n)
			}
			waitFor(t, "2 ticks on the second instance", func() bool { return second.n.Load() >= 2 })
		})
	}
}

// Tokens the timer could not have made (due far ahead or behind, not a
// multiple of the interval, not an integer, missing, many at once, the same
// one again and again) never make it tick more than once per interval, and
// it ticks on after them.
func TestOnceTrustsNoToken(t *testing.T) {
	t.Parallel()
	const interval = 200 * time.Millisecond
	ms := interval.Milliseconds()
	cases := []struct {
		name string
		dues func(now, slot int64) []any // nil: a token without the header
	}{
		{"far", func(now, slot int64) []any {
			return []any{int64(math.MaxInt64), int64(1 << 62), int64(-1), int64(math.MinInt64),
				slot - 10*ms, slot + 10*ms}
		}},
		{"not integers", func(now, slot int64) []any {
			return []any{"1700000000000", float64(slot), nil, true, []byte("1"), map[string]any{"due": slot}}
		}},
		{"inside one interval", func(now, slot int64) []any {
			var dues []any
			for i := range 50 {
				dues = append(dues, now+int64(i))
			}
			return dues
		}},
		{"again and again", func(now, slot int64) []any {
			var dues []any
			for range 20 { // this interval's, the next one's, the last one's
				dues = append(dues, slot, slot+ms, slot-ms, int32(0))
			}
			return dues
		}},
	}
	for _, b := range brokers {
		for i, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				uri := b.uri(t)
				service := fmt.Sprintf("hostile%d", i)
				var c counter
				start(t, uri, service, func(r *entrypoint.Registry) {
					timer.Handle(r, "beat", interval, c.tick(0), timer.Once())
				})
				waitFor(t, "a tick", func() bool { return c.n.Load() >= 1 })
				now := time.Now().UnixMilli()
				dues := tc.dues(now, now-now%ms)
				before := c.n.Load()
				publishTokens(t, uri, timer.QueueName(service, "beat"), dues)
				time.Sleep(10 * interval)
				// Eleven due times at most begin in ten intervals; one more
				// for the token of the interval the tokens came in.
				if n := c.n.Load() - before; n > 12 {
					t.Fatalf("%d ticks in 10 intervals after %d hostile tokens, want at most one per interval", n, len(dues))
				}
				after := c.n.Load()
				waitFor(t, "3 more ticks", func() bool { return c.n.Load() >= after+3 })
			})
		}
	}
}

// A timer whose next token the broker refuses (its delay queue is gone)
// logs at error and seeds fresh tokens, with pauses, until one is taken:
// it neither stops nor runs its tick again meanwhile.
func TestOnceReseedsATokenItCannotPassOn(t *testing.T) {
	t.Parallel()
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			uri := b.uri(t)
			const interval = 100 * time.Millisecond
			var c counter
			logs := &errorLog{}
			// Without the connection's topology check, which would declare
			// the queue again by itself.
			startWith(t, uri, "reseed", slog.New(logs), func(r *entrypoint.Registry) {
				timer.Handle(r, "beat", interval, c.tick(interval), timer.Once())
			}, dial.TopologyCheck(-1))
			// The queue goes while the token is held, so that only its
			// successor has nowhere to go.
			waitFor(t, "a tick under way", func() bool { return c.running.Load() == 1 })
			admin := connect(t, uri)
			delay := timer.DelayQueueName("reseed", "beat")
			if err := admin.DeleteQueue(context.Background(), delay); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "an error naming the timer", func() bool { return logs.has("beat") })
			stalled := c.n.Load()
			time.Sleep(6 * time.Second) // long enough for a held token to be retried, were it

			if n := c.n.Load() - stalled; n != 0 {
				t.Fatalf("%d ticks while no token could be passed on: the tick ran again", n)
			}
			if err := admin.DeclareQueue(context.Background(), transport.Queue{Name: delay, Durable: true,
				Args: map[string]any{"x-dead-letter-exchange": "", "x-dead-letter-routing-key": timer.QueueName("reseed", "beat")},
			}); err != nil {
				t.Fatal(err)
			}
			after := c.n.Load()
			waitFor(t, "3 more ticks", func() bool { return c.n.Load() >= after+3 })
		})
	}
}

// connect returns a connection to uri of the test's own, closed at its end.
func connect(t *testing.T, uri string) dial.Broker {
	t.Helper()
	b, err := dial.Dial(context.Background(), uri, dial.Name("admin"), dial.Logger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// publishTokens puts one token per due into queue, a nil due as a token
// without the header.
func publishTokens(t *testing.T, uri, queue string, dues []any) {
	t.Helper()
	b := connect(t, uri)
	for _, due := range dues {
		headers := map[string]any{}
		if due != nil {
			headers[timer.DueHeader] = due
		}
		if err := b.Publish(context.Background(), transport.Publishing{RoutingKey: queue, Mandatory: true,
			Message: transport.Message{Headers: headers}}); err != nil {
			t.Fatalf("publishing a token due %v: %v", due, err)
		}
	}
}

// errorLog keeps the messages and attributes of records logged at error.
type errorLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errorLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler               { return l }
func (l *errorLog) WithGroup(string) slog.Handler                    { return l }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return nil
}

func (l *errorLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}
