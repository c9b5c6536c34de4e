package entrypoint

import (
	"context"
	"sync"
)

// Pool bounds how many workers of one service run at once (MAX_WORKERS). Every
// entrypoint of a service shares its pool; consuming replies never takes a slot,
// so a worker waiting on a nested call cannot starve its own reply.
type Pool struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// NewPool returns a pool of size workers; size below 1 is taken as 1.
func NewPool(size int) *Pool {
	return &Pool{slots: make(chan struct{}, max(size, 1))}
}

// Size is the most workers the pool runs at once.
func (p *Pool) Size() int { return cap(p.slots) }

// Busy is the number of workers running now.
func (p *Pool) Busy() int { return len(p.slots) }

// Go waits for a free slot, then runs fn in a new goroutine. It returns
// ctx.Err() without running fn when ctx ends first.
func (p *Pool) Go(ctx context.Context, fn func()) error {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.wg.Add(1)
	go func() {
		defer func() {
			<-p.slots
			p.wg.Done()
		}()
		fn()
	}()
	return nil
}

// Wait blocks until every running worker has returned, or ctx ends; it returns
// ctx.Err() in the second case.
func (p *Pool) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
