package worker

import (
	"container/list"
	"context"
	"runtime"
	"sync"
)

// SmallMessage is the largest message that runs without waiting for the
// budget. MAX_WORKERS of them cost little next to one large message, and a
// worker's nested call with small arguments to a service of the same
// process never waits behind the budget its own caller holds.
const SmallMessage = 64 << 10

// Budget bounds the bytes of the messages that the workers of a process
// decode and run at once, whatever their entrypoint: decoding a request
// takes many times its size (a list of small objects decoded into an any
// takes some 20 times), so MAX_WORKERS large requests at once could take
// gigabytes. A message takes its size from the budget before it starts and
// gives it back when its worker ends. One that does not fit waits its turn,
// first come first served, and never fails for want of budget; one larger
// than the whole budget waits for all of it, and so runs alone. Messages of
// at most SmallMessage bytes do not wait.
//
// Every pool of a process shares one Budget (see WithBudget); it is safe for
// concurrent use.
type Budget struct {
	limit int64

	mu      sync.Mutex
	used    int64
	waiters list.List // of *budgetWaiter, in arrival order
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes are granted
}

// NewBudget returns a budget of limit bytes; limit below 1 is taken as 1.
func NewBudget(limit int64) *Budget { return &Budget{limit: max(limit, 1)} }

// Limit is the bytes the budget holds.
func (b *Budget) Limit() int64 { return b.limit }

// InUse is the bytes taken from the budget now.
func (b *Budget) InUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// acquire waits until size bytes fit, in turn, and takes them; it returns
// the bytes taken, for release. It returns ctx.Err() without taking any
// when ctx ends first.
func (b *Budget) acquire(ctx context.Context, size int64) (int64, error) {
	if size <= SmallMessage {
		return 0, nil
	}
	n := min(size, b.limit)
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.used+n <= b.limit {
		b.used += n
		b.mu.Unlock()
		return n, nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	elem := b.waiters.PushBack(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return n, nil
	case <-ctx.Done():
		b.mu.Lock()
		defer b.mu.Unlock()
		select {
		case <-w.ready: // granted meanwhile: give it back
			b.used -= n
		default:
			b.waiters.Remove(elem)
		}
		b.grant() // the next in line may fit now
		return 0, ctx.Err()
	}
}

// release gives back n bytes that acquire took; a nil budget has none to
// take back.
func (b *Budget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= n
	b.grant()
}

// settle gives back the bytes of work that has ended. When they were more
// than half the budget, it first collects the garbage their decoding left,
// many times their size: the garbage collector sets its next goal at twice
// the heap it last found live, and a decode in progress at that moment
// counts as live, so without this the next large message would start on a
// heap already grown by the last one's.
func (b *Budget) settle(n int64) {
	if b != nil && n > b.limit/2 {
		runtime.GC()
	}
	b.release(n)
}

// grant hands bytes to the waiters at the front of the line while they fit;
// the one that does not fit keeps the others behind it waiting, so that a
// large message is not passed over forever.
func (b *Budget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*budgetWaiter)
		if b.used+w.n > b.limit {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}
