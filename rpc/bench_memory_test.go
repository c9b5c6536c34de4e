package rpc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	transportdial "github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// BenchmarkCallEmbedded times the add call over the embedded broker: with no
// network and no broker process, what is left is the framework's own cost
// per call (encoding, headers, the worker path, matching the reply).
//
//	go test -run '^$' -bench BenchmarkCallEmbedded -benchmem ./rpc/
func BenchmarkCallEmbedded(b *testing.B) {
	for _, inFlight := range []int{1, 64} {
		name := "sequential"
		if inFlight > 1 {
			name = fmt.Sprintf("%d_in_flight", inFlight)
		}
		b.Run(name, func(b *testing.B) {
			uri := "memory://bench-" + name
			b.Cleanup(func() { memory.Reset("bench-" + name) })
			call := embeddedCaller(b, uri)
			ctx := context.Background()
			if err := call(ctx); err != nil {
				b.Fatal("warm-up call:", err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var err error
			if inFlight > 1 {
				err = benchConcurrently(b.N, inFlight, func() error { return call(ctx) })
			} else {
				for i := 0; i < b.N && err == nil; i++ {
					err = call(ctx)
				}
			}
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(1e9/ns, "calls/s")
		})
	}
}

// embeddedCaller serves add on the embedded broker at uri, with a pool of
// benchWorkers, and returns a standalone client's call.
func embeddedCaller(tb testing.TB, uri string) func(ctx context.Context) error {
	ctx := context.Background()
	broker, err := transportdial.Dial(ctx, uri)
	if err != nil {
		tb.Fatal(err)
	}
	reg := entrypoint.NewRegistry("bench_embedded")
	rpc.Handle(reg, "add", func(_ context.Context, in pair) (float64, error) { return in.A + in.B, nil })
	srv := rpc.NewServer(broker, reg, rpc.ServerConfig{Service: "bench_embedded", Pool: worker.NewPool(benchWorkers)})
	if err := srv.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	c, err := hyphatest.Client(tb, ctx, uri, rpc.Config{Timeout: 10 * time.Second})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		c.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Stop(sctx)
		broker.Close()
	})
	proxy := c.Proxy("bench_embedded")
	return func(ctx context.Context) error {
		var sum float64
		if err := proxy.Call(ctx, "add", rpc.Args(1, 2), &sum); err != nil {
			return err
		}
		if sum != 3 {
			return fmt.Errorf("add(1, 2) = %v", sum)
		}
		return nil
	}
}
