package timer_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/timer"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// brokers are the brokers Once timers are tested on: the URI a test uses.
var brokers = []struct {
	name string
	uri  func(t *testing.T) string
}{
	{"rabbitmq", func(t *testing.T) string { return testbroker.URI(t) }},
	{"memory", func(t *testing.T) string {
		name := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name())
		t.Cleanup(func() { memory.Reset(name) })
		return memory.Scheme + "://" + name
	}},
}

// instance is one running instance of a service with timers.
type instance struct {
	srv    *timer.Server
	broker dial.Broker
	pool   *worker.Pool
	stop   sync.Once
}

// start runs an instance of service with the timers register adds, on a
// connection of its own to uri (none when uri is ""), until Stop or Kill or
// the test's end.
func start(t *testing.T, uri, service string, register func(r *entrypoint.Registry)) *instance {
	t.Helper()
	return startWith(t, uri, service, quiet, register)
}

// startWith is start with the instance's logger (its connection's too) and
// connection options.
func startWith(t *testing.T, uri, service string, log *slog.Logger, register func(r *entrypoint.Registry), opts ...dial.Option) *instance {
	t.Helper()
	opts = append([]dial.Option{dial.Name(service), dial.Logger(log)}, opts...)
	reg := entrypoint.NewRegistry(service)
	register(reg)
	if err := reg.Err(); err != nil {
		t.Fatal(err)
	}
	in := &instance{pool: worker.NewPool(4)}
	if uri != "" {
		b, err := dial.Dial(context.Background(), uri, opts...)
		if err != nil {
			t.Fatal(err)
		}
		in.broker = b
	}
	cfg := timer.ServerConfig{Service: service, Pool: in.pool, Logger: log}
	if in.broker != nil {
		in.srv = timer.NewServer(in.broker, reg, cfg)
	} else {
		in.srv = timer.NewServer(nil, reg, cfg)
	}
	if err := in.srv.Start(context.Background()); err != nil {
		in.Kill()
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Stop(time.Second) })
	return in
}

// Stop stops the instance as the framework does: drain, wait for running
// ticks up to grace, cancel them, close.
func (in *instance) Stop(grace time.Duration) {
	in.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		_ = in.srv.Drain(ctx)
		in.pool.Finish(ctx, time.Second)
		_ = in.srv.Close()
		if in.broker != nil {
			_ = in.broker.Close()
		}
	})
}

// Kill drops the instance's broker connection without stopping it first, as
// a crashed process's goes, then lets its goroutines end.
func (in *instance) Kill() {
	in.stop.Do(func() {
		if in.broker != nil {
			_ = in.broker.Close()
		}
		in.pool.Cancel()
		_ = in.srv.Close()
	})
}

// counter counts ticks and the most that ever ran at once, the ticks whose
// context was cancelled before their hold was over, and when (Unix ms) the
// first and the latest tick began.
type counter struct {
	n, running, most, cancelled atomic.Int64
	first, latest               atomic.Int64
}

func (c *counter) tick(hold time.Duration) timer.Func {
	return func(ctx context.Context) error {
		now := c.running.Add(1)
		defer c.running.Add(-1)
		for {
			m := c.most.Load()
			if now <= m || c.most.CompareAndSwap(m, now) {
				break
			}
		}
		began := time.Now().UnixMilli()
		c.first.CompareAndSwap(0, began)
		c.latest.Store(began)
		c.n.Add(1)
		select {
		case <-time.After(hold):
		case <-ctx.Done():
			c.cancelled.Add(1)
		}
		return nil
	}
}

// waitFor polls cond every 10 ms until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
