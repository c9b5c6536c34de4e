package worker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/worker"
)

func TestSplitPrefetch(t *testing.T) {
	tests := []struct {
		size, n int
		want    []int
	}{
		{10, 1, []int{10}},
		{10, 4, []int{3, 3, 2, 2}},
		{7, 3, []int{3, 2, 2}},
		{2, 2, []int{1, 1}},
		{2, 5, []int{1, 1, 1, 1, 1}}, // more queues than workers: each gets one
	}
	for _, tt := range tests {
		if got := worker.SplitPrefetch(tt.size, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("SplitPrefetch(%d, %d) = %v, want %v", tt.size, tt.n, got, tt.want)
		}
	}
}

// TestPoolFinish: workers still running when ctx ends have their contexts
// cancelled with ErrStopping; those that ignore it are named.
func TestPoolFinish(t *testing.T) {
	p := worker.NewPool(2)
	causes := make(chan error, 1)
	release := make(chan struct{})
	ctx := context.Background()
	if err := p.Go(ctx, "svc.polite", func(ctx context.Context) {
		<-ctx.Done()
		causes <- context.Cause(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Go(ctx, "svc.stubborn", func(context.Context) { <-release }); err != nil {
		t.Fatal(err)
	}
	grace, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	still, cancelled := p.Finish(grace, 100*time.Millisecond)
	if !cancelled || !slices.Equal(still, []string{"svc.stubborn"}) {
		t.Fatalf("Finish = %v, %v; want [svc.stubborn], true", still, cancelled)
	}
	if cause := <-causes; !errors.Is(cause, worker.ErrStopping) {
		t.Fatalf("cause %v, want ErrStopping", cause)
	}
	close(release)
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if still, cancelled := p.Finish(ctx, time.Second); still != nil || cancelled {
		t.Fatalf("Finish on an idle pool = %v, %v", still, cancelled)
	}
}
