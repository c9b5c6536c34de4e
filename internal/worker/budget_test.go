package worker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/worker"
)

const kib = 1 << 10

// startSized runs work of size bytes on p, in a goroutine since GoSized may
// wait; the work reports its start and runs until finish is called.
func startSized(t *testing.T, ctx context.Context, p *worker.Pool, size int) (started <-chan struct{}, finish func(), err <-chan error) {
	t.Helper()
	s, done, errc := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		errc <- p.GoSized(ctx, "work", size, func(context.Context) {
			close(s)
			<-done
		})
	}()
	return s, func() { close(done) }, errc
}

func isStarted(c <-chan struct{}, within time.Duration) bool {
	select {
	case <-c:
		return true
	case <-time.After(within):
		return false
	}
}

// briefly is how long work that must wait is watched for starting anyway.
const briefly = 200 * time.Millisecond

func TestBudgetMakesLargeMessagesTakeTurns(t *testing.T) {
	p := worker.NewPool(10, worker.WithBudget(worker.NewBudget(1024*kib)))
	ctx := context.Background()
	firstStarted, finishFirst, _ := startSized(t, ctx, p, 600*kib)
	if !isStarted(firstStarted, 5*time.Second) {
		t.Fatal("the first message never started")
	}
	secondStarted, finishSecond, _ := startSized(t, ctx, p, 600*kib)
	if isStarted(secondStarted, briefly) {
		t.Fatal("a second message started while the budget had no room for it")
	}
	smallStarted, finishSmall, _ := startSized(t, ctx, p, worker.SmallMessage)
	if !isStarted(smallStarted, 5*time.Second) {
		t.Fatal("a small message waited for the budget")
	}
	finishSmall()
	finishFirst()
	if !isStarted(secondStarted, 5*time.Second) {
		t.Fatal("the second message never started once the first had finished")
	}
	finishSecond()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n := p.Budget().InUse(); n != 0 {
		t.Errorf("%d bytes still taken after every worker finished", n)
	}
}

func TestBudgetRunsAMessageLargerThanItAlone(t *testing.T) {
	p := worker.NewPool(10, worker.WithBudget(worker.NewBudget(1024*kib)))
	ctx := context.Background()
	smallStarted, finishSmall, _ := startSized(t, ctx, p, 200*kib)
	if !isStarted(smallStarted, 5*time.Second) {
		t.Fatal("the first message never started")
	}
	hugeStarted, finishHuge, _ := startSized(t, ctx, p, 5000*kib)
	if isStarted(hugeStarted, briefly) {
		t.Fatal("a message larger than the budget started beside another")
	}
	// In line behind the large one: it waits, though it would fit now.
	nextStarted, finishNext, _ := startSized(t, ctx, p, 200*kib)
	if isStarted(nextStarted, briefly) {
		t.Fatal("a message passed the larger one waiting before it")
	}
	finishSmall()
	if !isStarted(hugeStarted, 5*time.Second) {
		t.Fatal("a message larger than the budget never ran")
	}
	if isStarted(nextStarted, briefly) {
		t.Fatal("a message started beside one larger than the budget")
	}
	finishHuge()
	if !isStarted(nextStarted, 5*time.Second) {
		t.Fatal("the message behind the large one never ran")
	}
	finishNext()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBudgetWaitEndsWithItsContext(t *testing.T) {
	budget := worker.NewBudget(1024 * kib)
	p := worker.NewPool(10, worker.WithBudget(budget))
	other := worker.NewPool(10, worker.WithBudget(budget)) // another service of the process
	ctx := context.Background()
	firstStarted, finishFirst, _ := startSized(t, ctx, p, 1024*kib)
	if !isStarted(firstStarted, 5*time.Second) {
		t.Fatal("the first message never started")
	}
	wctx, cancel := context.WithCancel(ctx)
	_, _, errc := startSized(t, wctx, other, 600*kib)
	thirdStarted, finishThird, _ := startSized(t, ctx, other, 400*kib)
	time.Sleep(briefly)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("GoSized = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GoSized still waiting after its context ended")
	}
	if isStarted(thirdStarted, briefly) {
		t.Fatal("a message started while the budget was all taken")
	}
	finishFirst()
	if !isStarted(thirdStarted, 5*time.Second) {
		t.Fatal("the message behind a cancelled one never ran")
	}
	finishThird()
	for _, pool := range []*worker.Pool{p, other} {
		if err := pool.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := budget.InUse(); n != 0 {
		t.Errorf("%d bytes still taken after every worker finished", n)
	}
}
