package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/transport/dial"
)

// The scale figures are reported, not asserted: how far one process goes.
const (
	scaleInFlight = 10_000
	scaleServices = 50
	scaleEventHz  = 1_000
)

func runScale(ctx context.Context, host string, d time.Duration, out string) error {
	v, err := newVhost(host)
	if err != nil {
		return err
	}
	defer func() {
		if err := v.delete(); err != nil {
			fmt.Fprintln(os.Stderr, "rpcbench:", err)
		}
	}()
	var b strings.Builder
	fmt.Fprintf(&b, "Scale run of %s: %s per figure, GOMAXPROCS=%d, %s, RabbitMQ on the same machine.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), d, runtime.GOMAXPROCS(0), runtime.Version())
	b.WriteString("| figure | result |\n|---|---|\n")
	for _, f := range []func(context.Context, string, time.Duration, *strings.Builder) error{
		scaleCalls, scaleStart, scaleEvents,
	} {
		if err := f(ctx, v.uri, d, &b); err != nil {
			fmt.Fprintf(&b, "| failed | %s |\n", oneLine(err))
		}
		fmt.Fprint(os.Stderr, ".")
	}
	fmt.Fprintln(os.Stderr)
	fmt.Print(b.String())
	if out == "" {
		return nil
	}
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

// scaleCalls keeps scaleInFlight calls in flight from one Hypha client to one
// Hypha server over RabbitMQ for d, and checks that every call completes.
func scaleCalls(ctx context.Context, uri string, d time.Duration, b *strings.Builder) error {
	before := runtime.NumGoroutine()
	call, stop, err := hyphaStart("", false)(ctx, uri)
	if err != nil {
		return err
	}
	pad := padFor(64)
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	start := time.Now()
	for range scaleInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if err := call(ctx, pad); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					calls.Add(1)
				}
				if time.Now().After(deadline) {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stop()
	time.Sleep(200 * time.Millisecond) // let closed connections' goroutines return
	fmt.Fprintf(b, "| %d calls in flight, one client, one server (10 workers), RabbitMQ | %d calls completed in %s (%.0f calls/s), %d failed%s |\n",
		scaleInFlight, calls.Load(), elapsed.Round(time.Millisecond), float64(calls.Load())/elapsed.Seconds(), failed.Load(), firstErrText(&firstErr))
	fmt.Fprintf(b, "| peak RSS of the process (VmHWM) after it | %s |\n", vmHWM())
	fmt.Fprintf(b, "| goroutines before / after (client closed, server stopped) | %d / %d |\n", before, runtime.NumGoroutine())
	return nil
}

func firstErrText(v *atomic.Value) string {
	if err, ok := v.Load().(error); ok {
		return " (first: " + oneLine(err) + ")"
	}
	return ""
}

// vmHWM is the process's peak resident set size, from /proc/self/status.
func vmHWM() string {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown: " + err.Error()
	}
	for l := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scaleStart times framework.New and Start of scaleServices services in one
// process on the embedded broker, each with add.
func scaleStart(ctx context.Context, _ string, _ time.Duration, b *strings.Builder) error {
	opts := []framework.Option{
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://scale"}),
		framework.Logger(quietLogger()),
	}
	for i := range scaleServices {
		opts = append(opts, framework.Service(fmt.Sprintf("calculator_%02d", i), func() calculator { return calculator{} }))
	}
	start := time.Now()
	app, err := framework.New(opts...)
	if err != nil {
		return err
	}
	built := time.Since(start)
	if err := app.Start(ctx); err != nil {
		return err
	}
	started := time.Since(start)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stopStart := time.Now()
	if err := app.Stop(sctx); err != nil {
		return err
	}
	fmt.Fprintf(b, "| %d services in one process (framework.New + Start, embedded broker) | built in %s, started in %s in all, stopped in %s |\n",
		scaleServices, built.Round(time.Millisecond), started.Round(time.Millisecond), time.Since(stopStart).Round(time.Millisecond))
	return nil
}

// eventCounter handles the scale run's events.
type eventCounter struct{ n atomic.Int64 }

func (c *eventCounter) Register(r *entrypoint.Registry) {
	events.Handle(r, "count", "bench_source", "tick", func(context.Context, map[string]any) error {
		c.n.Add(1)
		return nil
	})
}

// scaleEvents dispatches scaleEventHz events a second over RabbitMQ to a
// handler service for d, sampling the heap after a GC every second.
func scaleEvents(ctx context.Context, uri string, d time.Duration, b *strings.Builder) error {
	counter := &eventCounter{}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": uri}),
		framework.Logger(quietLogger()),
		framework.Service("bench_sink", func() *eventCounter { return counter }),
	)
	if err != nil {
		return err
	}
	if err := app.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = app.Stop(sctx)
	}()
	conn, err := dial.Dial(ctx, uri, dial.Name("bench_source-dispatcher"), dial.Logger(quietLogger()))
	if err != nil {
		return err
	}
	defer conn.Close()
	disp := events.NewDispatcher(conn, events.DispatcherConfig{Source: "bench_source"})

	payload := map[string]any{"pad": padFor(64)}
	var sent, failed atomic.Int64
	var wg sync.WaitGroup
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	second := time.NewTicker(time.Second)
	defer second.Stop()
	var heaps []string
	start := time.Now()
	for time.Since(start) < d {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-second.C:
			heaps = append(heaps, heapAfterGC())
		case <-tick.C:
			for range scaleEventHz / 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := disp.Dispatch(ctx, "tick", payload); err != nil {
						failed.Add(1)
					} else {
						sent.Add(1)
					}
				}()
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	drain := time.Now().Add(10 * time.Second)
	for counter.n.Load() < sent.Load() && time.Now().Before(drain) {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Fprintf(b, "| %d events/s dispatched over RabbitMQ for %s to one handler | %d confirmed (%.0f/s), %d failed, %d handled |\n",
		scaleEventHz, d, sent.Load(), float64(sent.Load())/elapsed.Seconds(), failed.Load(), counter.n.Load())
	fmt.Fprintf(b, "| heap in use after GC, sampled each second | %s |\n", strings.Join(heaps, ", "))
	return nil
}

func heapAfterGC() string {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return fmt.Sprintf("%.1f MiB", float64(m.HeapInuse)/(1<<20))
}
