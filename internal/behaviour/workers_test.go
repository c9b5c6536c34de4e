package behaviour

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

var stopCases = []behaviourCase{
	{name: "workers at most MAX_WORKERS at once", run: testWorkerLimit},
	{name: "workers prefetches add up to MAX_WORKERS", run: testPrefetch},
	{name: "stop answers a running call", run: testStopAnswers},
	{name: "stop past GRACE_PERIOD cancels and requeues", run: testStopPastGrace},
}

func testWorkerLimit(t *testing.T, uri string) {
	g := newGate()
	hyphatest.Run(t, uri, config(map[string]any{"MAX_WORKERS": 2}), framework.Service("gate_limit", func() *gate { return g }))
	p := client(t, uri).Proxy("gate_limit")
	replies := make([]*rpc.Reply, 5)
	for i := range replies {
		replies[i] = p.CallAsync(context.Background(), "hold", map[string]any{"id": "call"})
	}
	receive(t, g.started, "the first call starting")
	receive(t, g.started, "the second call starting")
	quietFor(t, g.started, 300*time.Millisecond, "a third call started with MAX_WORKERS 2")
	close(g.release)
	for i, r := range replies {
		if err := r.Result(nil); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
}

// instance is one instance of a service with an RPC queue and an event
// handler, so that with MAX_WORKERS 2 each queue's prefetch is 1.
type instance struct {
	id      string
	started chan string
	release chan struct{}
	ticks   chan string
}

func (in *instance) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "hold", func(ctx context.Context, _ struct{}) (string, error) {
		in.started <- in.id
		select {
		case <-in.release:
			return in.id, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	rpc.Handle(r, "whoami", func(context.Context, struct{}) (string, error) { return in.id, nil })
	events.Handle(r, "on_tick", "prefetch_src", "tick", func(context.Context, struct{}) error {
		in.ticks <- in.id
		return nil
	})
}

// testPrefetch: an instance with one call running holds no second call,
// although a worker is free (its RPC queue's prefetch is 1 of MAX_WORKERS 2,
// the event queue has the other), so another instance takes it.
func testPrefetch(t *testing.T, uri string) {
	const service = "prefetch_svc"
	started, release, ticks := make(chan string, 4), make(chan struct{}), make(chan string, 4)
	newInstance := func(id string) framework.Option {
		return framework.Service(service, func() *instance {
			return &instance{id: id, started: started, release: release, ticks: ticks}
		})
	}
	workers := config(map[string]any{"MAX_WORKERS": 2})
	hyphatest.Run(t, uri, workers, newInstance("a"))
	p := client(t, uri).Proxy(service)
	held := p.CallAsync(context.Background(), "hold", nil)
	if id := receive(t, started, "the held call starting"); id != "a" {
		t.Fatalf("the held call ran on %q", id)
	}
	// The event queue has a prefetch of its own: the event runs beside the call.
	if err := dispatcher(t, uri, "prefetch_src").Dispatch(context.Background(), "tick", struct{}{}); err != nil {
		t.Fatal(err)
	}
	if id := receive(t, ticks, "the event beside the held call"); id != "a" {
		t.Fatalf("the event ran on %q", id)
	}
	who := p.CallAsync(context.Background(), "whoami", nil)
	hyphatest.Run(t, uri, workers, newInstance("b"))
	var id string
	if err := who.Result(&id); err != nil || id != "b" {
		t.Errorf("whoami = %q, %v; want b: instance a, its one RPC prefetch taken, should not hold it", id, err)
	}
	close(release)
	if err := held.Result(&id); err != nil || id != "a" {
		t.Errorf("the held call = %q, %v; want a", id, err)
	}
}

func testStopAnswers(t *testing.T, uri string) {
	g := newGate()
	app := hyphatest.Run(t, uri, framework.Service("gate_stop", func() *gate { return g }))
	reply := client(t, uri).Proxy("gate_stop").CallAsync(context.Background(), "hold", map[string]any{"id": "running"})
	receive(t, g.started, "the call starting")
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	quietFor(t, stopped, 200*time.Millisecond, "Stop returned while a call ran")
	close(g.release)
	if err := receive(t, stopped, "Stop returning"); err != nil {
		t.Fatal("Stop:", err)
	}
	var got string
	if err := reply.Result(&got); err != nil || got != "running" {
		t.Fatalf("reply = %q, %v; want the call's result, sent during Stop", got, err)
	}
}

// stubborn waits for its context to end on its first run, and answers on
// the next.
type stubborn struct {
	runs    atomic.Int64
	started chan struct{}
	causes  chan error
}

func (s *stubborn) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "wait", func(ctx context.Context, _ struct{}) (string, error) {
		if s.runs.Add(1) > 1 {
			return "rerun", nil
		}
		close(s.started)
		<-ctx.Done()
		s.causes <- context.Cause(ctx)
		return "first run", ctx.Err()
	})
}

func testStopPastGrace(t *testing.T, uri string) {
	s := &stubborn{started: make(chan struct{}), causes: make(chan error, 1)}
	svc := framework.Service("stubborn", func() *stubborn { return s })
	grace := config(map[string]any{"GRACE_PERIOD": 0.3})
	app := hyphatest.Run(t, uri, grace, svc)
	reply := client(t, uri).Proxy("stubborn").CallAsync(context.Background(), "wait", nil)
	receive(t, s.started, "the call starting")
	began := time.Now()
	if err := app.Stop(context.Background()); err != nil {
		t.Fatalf("Stop past GRACE_PERIOD: %v, want nil", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Stop took %v with GRACE_PERIOD 0.3", took)
	}
	if cause := receive(t, s.causes, "the handler's context ending"); !errors.Is(cause, entrypoint.ErrStopping) {
		t.Errorf("the handler's context ended with %v, want entrypoint.ErrStopping", cause)
	}
	// The cancelled call went back to its queue; the next instance answers it.
	hyphatest.Run(t, uri, grace, svc)
	var got string
	if err := reply.Result(&got); err != nil || got != "rerun" {
		t.Fatalf("reply = %q, %v; want the next instance's answer", got, err)
	}
}
