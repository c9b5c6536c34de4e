package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/worker"
)

// Size and Busy say what the pool holds; a full pool makes Go wait until
// its context ends, and a worker that ignores its cancelled context is
// named by Finish.
func TestPoolSizeBusyAndStuckWorkers(t *testing.T) {
	if got := worker.NewPool(0).Size(); got != 1 {
		t.Fatalf("NewPool(0).Size() = %d, want 1", got)
	}
	if got := worker.NewBudget(0).Limit(); got != 1 {
		t.Fatalf("NewBudget(0).Limit() = %d, want 1", got)
	}
	p := worker.NewPool(2)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	if err := p.Go(context.Background(), "polite", func(ctx context.Context) { started <- struct{}{}; <-ctx.Done() }); err != nil {
		t.Fatal(err)
	}
	if err := p.Go(context.Background(), "stuck", func(context.Context) { started <- struct{}{}; <-release }); err != nil {
		t.Fatal(err)
	}
	<-started
	<-started
	if p.Size() != 2 || p.Busy() != 2 {
		t.Fatalf("Size %d, Busy %d, want 2 and 2", p.Size(), p.Busy())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := p.Go(ctx, "third", func(context.Context) { t.Error("ran in a full pool") })
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Go on a full pool = %v, want its context's end", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	still, cancelled := p.Finish(ctx, 50*time.Millisecond)
	if !cancelled || len(still) != 1 || still[0] != "stuck" {
		t.Fatalf("Finish = %v, %v; want [stuck], true", still, cancelled)
	}
	close(release)
	if err := p.Wait(context.Background()); err != nil || p.Busy() != 0 {
		t.Fatalf("Wait = %v, Busy %d after the stuck worker ended", err, p.Busy())
	}
}
