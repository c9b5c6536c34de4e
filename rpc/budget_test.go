package rpc_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// TestLargeRequestsTakeTurnsForTheBudget sends requests each larger than the
// process's whole budget, at once: every one is answered, one at a time.
func TestLargeRequestsTakeTurnsForTheBudget(t *testing.T) {
	var running, most atomic.Int64
	pool := worker.NewPool(4, worker.WithBudget(worker.NewBudget(256<<10)))
	serveWith(t, rpc.ServerConfig{Service: "budgeted", Pool: pool}, func(r *entrypoint.Registry) {
		rpc.Handle(r, "size", func(_ context.Context, in struct {
			S string `json:"s"`
		}) (int, error) {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Millisecond) // long enough for the others to start beside it, if they could
			return len(in.S), nil
		})
	})
	proxy := newClient(t, 30*time.Second).Proxy("budgeted")
	big := strings.Repeat("x", 1<<20)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			n, err := rpc.Call[int](context.Background(), proxy, "size", rpc.Args(big))
			if err != nil || n != len(big) {
				t.Errorf("size = %d, %v; want %d", n, err, len(big))
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d requests larger than the budget ran at once, want 1", m)
	}
}
