package framework_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// stubborn has one handler that gives up when its context is cancelled and
// one that ignores it for a while.
type stubborn struct {
	started chan string
	causes  chan error
	ignored chan struct{}
}

func (s *stubborn) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "wait", func(ctx context.Context, _ struct{}) (string, error) {
		s.started <- "wait"
		<-ctx.Done()
		s.causes <- context.Cause(ctx)
		return "", ctx.Err()
	})
	rpc.Handle(r, "ignore", func(ctx context.Context, _ struct{}) (string, error) {
		s.started <- "ignore"
		defer close(s.ignored)
		time.Sleep(2500 * time.Millisecond)
		return "done", nil
	})
}

// TestStopPastTheGracePeriod: when GRACE_PERIOD is over, the handlers still
// running have their contexts cancelled; Stop returns without an error and
// logs one warning naming what ignored the cancellation; a cancelled call
// goes back to its queue.
func TestStopPastTheGracePeriod(t *testing.T) {
	var logs syncBuffer
	s := &stubborn{started: make(chan string, 2), causes: make(chan error, 1), ignored: make(chan struct{})}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 0.5}),
		framework.Logger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		framework.Service("stubborn", func() *stubborn { return s }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := dial(t)
	p := c.Proxy("stubborn")
	p.CallAsync(ctx, "wait", struct{}{})
	p.CallAsync(ctx, "ignore", struct{}{})
	for range 2 {
		select {
		case <-s.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the handlers did not start")
		}
	}
	began := time.Now()
	if err := app.Stop(ctx); err != nil {
		t.Fatalf("Stop past the grace period: %v, want nil", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Stop took %v with GRACE_PERIOD 0.5", took)
	}
	select {
	case cause := <-s.causes:
		if !errors.Is(cause, entrypoint.ErrStopping) {
			t.Errorf("the handler's context ended with %v, want entrypoint.ErrStopping", cause)
		}
	default:
		t.Error("the handler's context was not cancelled when the grace period ended")
	}
	out := logs.String()
	if n := strings.Count(out, "grace period over"); n != 1 {
		t.Errorf("%d warnings about the grace period, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "stubborn.ignore") {
		t.Errorf("the warning does not name the handler still running:\n%s", out)
	}
	for _, fx := range []string{"OnStop hook failed", "stop failed", "level=ERROR"} {
		if strings.Contains(out, fx) {
			t.Errorf("the log has %q:\n%s", fx, out)
		}
	}
	<-s.ignored
	// The cancelled call went back to the queue, for another instance.
	out2, err := testbroker.Rabbitmqctl("list_queues", "-q", "--no-table-headers", "-p", testbroker.VHost(t), "name", "messages")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(out2) {
		if f := strings.Fields(line); len(f) == 2 && f[0] == rpc.QueueName("stubborn") {
			if n, _ := strconv.Atoi(f[1]); n < 1 {
				t.Errorf("%s holds %d messages, want the cancelled call back in it", f[0], n)
			}
		}
	}
}

// TestFailedStartIsLoggedOnce: a start that fails is reported by Start's
// error alone, not also by fx's own error lines.
func TestFailedStartIsLoggedOnce(t *testing.T) {
	var logs syncBuffer
	uri := strings.Replace(testbroker.URI(t), "guest:guest", "guest:wrong", 1)
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": uri}),
		framework.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
		framework.Service("unstartable", func() *stubborn { return &stubborn{} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err == nil {
		t.Fatal("Start with a refused login succeeded")
	}
	if out := logs.String(); strings.Contains(out, "level=ERROR") {
		t.Fatalf("a failed start was logged besides Start's error:\n%s", out)
	}
}

// sharer has RPC methods and two event handlers.
type sharer struct{}

func (sharer) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
	events.Handle(r, "on_a", "src_share", "a", func(context.Context, map[string]any) error { return nil })
	events.Handle(r, "on_b", "src_share", "b", func(context.Context, map[string]any) error { return nil })
}

// TestPrefetchesShareMaxWorkers: the prefetches of a service's queues add
// up to MAX_WORKERS.
func TestPrefetchesShareMaxWorkers(t *testing.T) {
	hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(map[string]any{"MAX_WORKERS": 7}), framework.Service("sharer", func() sharer { return sharer{} }))
	out, err := testbroker.Rabbitmqctl("list_consumers", "-q", "--no-table-headers", "-p", testbroker.VHost(t), "queue_name", "prefetch_count")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) == 2 && strings.Contains(f[0], "share") {
			got[f[0]], _ = strconv.Atoi(f[1])
		}
	}
	want := map[string]int{
		"rpc-sharer":                   3,
		"evt-src_share-a--sharer.on_a": 2,
		"evt-src_share-b--sharer.on_b": 2,
	}
	for q, n := range want {
		if got[q] != n {
			t.Errorf("prefetch of %s = %d, want %d (all: %v)", q, got[q], n, got)
		}
	}
}

// TestFailedNewLeavesNothingRunning: when New fails after the tracer
// providers were built, their exporters are shut down again.
func TestFailedNewLeavesNothingRunning(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	_, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "TRACING": map[string]any{"EXPORTER": "console"}}),
		framework.Logger(quiet),
		framework.Service("broken", func(*events.Dispatcher) (*stubborn, error) { return nil, errors.New("no database") }),
	)
	if err == nil || !strings.Contains(err.Error(), "no database") {
		t.Fatalf("New: %v, want the constructor's error", err)
	}
}
