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

	mu      sync.Mutex
	running int
	idle    chan struct{} // closed when running drops to zero
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
// ctx.Err() without running fn when ctx ends first, or has already ended.
func (p *Pool) Go(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.mu.Lock()
	if p.running == 0 {
		p.idle = make(chan struct{})
	}
	p.running++
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			if p.running--; p.running == 0 {
				close(p.idle)
			}
			p.mu.Unlock()
			<-p.slots
		}()
		fn()
	}()
	return nil
}

// Wait blocks until no worker is running, or ctx ends; it returns ctx.Err()
// in the second case. Workers started meanwhile are waited for too.
func (p *Pool) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.running == 0 {
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
