// Package worker holds the machinery that runs a service's work, whatever
// its entrypoint's kind: the Pool of MAX_WORKERS workers, the Budget of
// bytes the workers of a process decode at once, and the small rules every
// kind applies to a delivery alike (MaxHeaders, HeaderCount, SplitPrefetch).
// Package entrypoint hands a service's Pool to each plugin; the framework
// builds it.
package worker

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// ErrStopping is the cause (context.Cause) of a worker's context ending when
// its pool is cancelled: the stop's grace period is over. Package entrypoint
// exports it as entrypoint.ErrStopping.
var ErrStopping = errors.New("hypha: stopping: the grace period is over")

// Pool bounds how many workers of one service run at once (MAX_WORKERS). Every
// entrypoint of a service shares its pool; consuming replies never takes a slot,
// so a worker waiting on a nested call cannot starve its own reply.
//
// Each worker runs with a context of the pool's, which Cancel cancels: that is
// how a stop whose grace period is over tells the workers still running to give up.
type Pool struct {
	slots  chan struct{}
	budget *Budget // nil: work takes no budget
	ctx    context.Context
	cancel context.CancelCauseFunc

	mu      sync.Mutex
	running map[*worker]struct{}
	idle    chan struct{} // closed when running empties
}

type worker struct{ label string }

// Option configures a Pool.
type Option interface{ applyPool(*Pool) }

type optionFunc func(*Pool)

func (f optionFunc) applyPool(p *Pool) { f(p) }

// WithBudget makes the pool's work on a message (GoSized) wait for room in
// b, which the pools of every service of a process share.
func WithBudget(b *Budget) Option { return optionFunc(func(p *Pool) { p.budget = b }) }

// NewPool returns a pool of size workers; size below 1 is taken as 1.
func NewPool(size int, opts ...Option) *Pool {
	p := &Pool{slots: make(chan struct{}, max(size, 1)), running: map[*worker]struct{}{}}
	for _, o := range opts {
		o.applyPool(p)
	}
	p.ctx, p.cancel = context.WithCancelCause(context.Background())
	return p
}

// Budget is the budget the pool's work on messages takes from; nil when it
// has none.
func (p *Pool) Budget() *Budget { return p.budget }

// Size is the most workers the pool runs at once.
func (p *Pool) Size() int { return cap(p.slots) }

// Busy is the number of workers running now.
func (p *Pool) Busy() int { return len(p.slots) }

// Go waits for a free slot, then runs fn in a new goroutine with the pool's
// context; label names the work in Running. It returns ctx.Err() without
// running fn when ctx ends first, or has already ended.
func (p *Pool) Go(ctx context.Context, label string, fn func(ctx context.Context)) error {
	return p.GoSized(ctx, label, 0, fn)
}

// GoSized is Go for work on a message of size bytes: before it waits for a
// slot, it waits, in turn, for the pool's Budget to have room for size bytes,
// which it gives back when fn returns (see Budget).
func (p *Pool) GoSized(ctx context.Context, label string, size int, fn func(ctx context.Context)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var taken int64
	if p.budget != nil {
		var err error
		if taken, err = p.budget.acquire(ctx, int64(size)); err != nil {
			return err
		}
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		p.budget.release(taken)
		return ctx.Err()
	}
	w := &worker{label: label}
	p.mu.Lock()
	if len(p.running) == 0 {
		p.idle = make(chan struct{})
	}
	p.running[w] = struct{}{}
	p.mu.Unlock()
	go func() {
		defer func() {
			// The budget first, so that a worker Wait no longer waits
			// for holds none.
			p.budget.settle(taken)
			p.mu.Lock()
			delete(p.running, w)
			if len(p.running) == 0 {
				close(p.idle)
			}
			p.mu.Unlock()
			<-p.slots
		}()
		fn(p.ctx)
	}()
	return nil
}

// Cancel cancels the context of every worker, running or still to start,
// with ErrStopping as its cause.
func (p *Pool) Cancel() { p.cancel(ErrStopping) }

// Running lists the labels of the workers running now, sorted.
func (p *Pool) Running() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	labels := make([]string, 0, len(p.running))
	for w := range p.running {
		labels = append(labels, w.label)
	}
	slices.Sort(labels)
	return labels
}

// Finish waits for the running workers until ctx ends; if some are still
// running then, it cancels every worker's context (Cancel) and waits for
// them at most extra longer. It returns the labels of the workers it had to
// cancel that were still running at the end (nil when all finished in time)
// and whether it had to cancel at all.
func (p *Pool) Finish(ctx context.Context, extra time.Duration) (stillRunning []string, cancelled bool) {
	if p.Wait(ctx) == nil {
		return nil, false
	}
	p.Cancel()
	wctx, cancel := context.WithTimeout(context.Background(), extra)
	defer cancel()
	if p.Wait(wctx) == nil {
		return nil, true
	}
	return p.Running(), true
}

// Wait blocks until no worker is running, or ctx ends; it returns ctx.Err()
// in the second case. Workers started meanwhile are waited for too.
func (p *Pool) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		if len(p.running) == 0 {
			p.mu.Unlock()
			return nil
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
