package frame

import (
	"net"
	"sync"
	"time"
)

// Writes to the broker go through a writeBehind, so that no lock is held
// across a socket write and concurrent frames share one write.
//
// amqp091-go writes each frame (a publish, an ack) with its connection's send
// lock held across the socket write, so every publisher and acker of the
// connection waits for every write syscall before its own. A writeBehind
// copies the bytes into a buffer and returns at once; one goroutine writes
// whatever has gathered in one write call. Under load, frames from many
// goroutines go out together, and nobody waits for anybody else's syscall.
// Upstream, amqp091-go could release its send lock before flushing, or flush
// once for frames queued while a flush was in progress.
//
// Ordering is kept: bytes are written in the order Write was called. Back
// pressure is kept too: once maxPending bytes wait (a broker that stopped
// reading, connection.blocked), Write blocks until they drain. A failed
// write closes the connection, so that amqp091-go's reader fails and the
// connection is recovered as after any other loss; the error is also what
// every later Write returns.
type writeBehind struct {
	conn net.Conn

	mu      sync.Mutex
	drained sync.Cond // signalled after each write, and when the writer ends
	pending []byte
	spare   []byte
	err     error // the first write error, or net.ErrClosed after Close

	wake chan struct{} // holds one wake-up for the writer when there is work
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the writer has returned
}

const (
	// maxPending bounds the bytes waiting to be written before Write blocks.
	maxPending = 1 << 20
	// keepBuffer is the largest buffer kept for reuse after a write; a burst
	// of large messages does not pin its memory for the connection's life.
	keepBuffer = 64 << 10
	// closeFlushTimeout bounds the last write at Close (connection.close-ok,
	// say) when the broker has stopped reading.
	closeFlushTimeout = time.Second
)

func newWriteBehind(conn net.Conn) *writeBehind {
	w := &writeBehind{
		conn: conn,
		wake: make(chan struct{}, 1),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	w.drained.L = &w.mu
	go w.run()
	return w
}

// Write queues p to be written and returns at once, unless maxPending bytes
// are already waiting; it fails with the first write error, or net.ErrClosed
// after Close.
func (w *writeBehind) Write(p []byte) (int, error) {
	w.mu.Lock()
	for w.err == nil && len(w.pending) >= maxPending {
		w.drained.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	w.pending = append(w.pending, p...)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // the writer is already due to run
	}
	return len(p), nil
}

// run writes what is pending each time it is woken, until Close; then it
// writes what is left, bounded by closeFlushTimeout.
func (w *writeBehind) run() {
	defer close(w.done)
	for {
		select {
		case <-w.wake:
			if !w.flush() {
				return
			}
		case <-w.quit:
			w.flush()
			return
		}
	}
}

// flush writes everything pending, including what comes while it writes,
// and reports whether the connection is still good.
func (w *writeBehind) flush() bool {
	for {
		w.mu.Lock()
		if w.err != nil && w.err != net.ErrClosed {
			w.mu.Unlock()
			return false
		}
		if len(w.pending) == 0 {
			w.mu.Unlock()
			return true
		}
		out := w.pending
		w.pending = w.spare[:0]
		w.spare = nil
		w.mu.Unlock()

		_, err := w.conn.Write(out)

		w.mu.Lock()
		if cap(out) <= keepBuffer {
			w.spare = out[:0]
		}
		if err != nil && (w.err == nil || w.err == net.ErrClosed) {
			w.err = err
			w.pending = nil
		}
		w.drained.Broadcast()
		w.mu.Unlock()
		if err != nil {
			// The reader fails on the closed connection, and amqp091-go
			// shuts the connection down as after any other loss.
			_ = w.conn.Close()
			return false
		}
	}
}

// Close writes what is pending (waiting at most closeFlushTimeout for a
// broker that does not read), stops the writer and closes the connection.
func (w *writeBehind) Close() error {
	w.mu.Lock()
	select {
	case <-w.quit:
		w.mu.Unlock()
		<-w.done
		return nil
	default:
	}
	if w.err == nil {
		w.err = net.ErrClosed // later Writes fail; what is pending is still written
	}
	close(w.quit)
	w.drained.Broadcast()
	w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	<-w.done
	return w.conn.Close()
}
