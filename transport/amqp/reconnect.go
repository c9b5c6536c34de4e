package amqp

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport"
)

// supervise waits for the session to end and reconnects, until Close.
func (b *connection) supervise(sess *session) {
	defer b.wg.Done()
	for {
		closed := sess.conn.NotifyClose(make(chan *amqp091.Error, 1))
		var reason *amqp091.Error
		select {
		case reason = <-closed:
		case <-b.done:
			return
		}
		if b.lose(sess) {
			return
		}
		lostAt := time.Now()
		b.log.Warn("hypha: broker connection lost; reconnecting", "node", b.nodeName(), "reason", describe(reason))
		b.nextNode() // with several nodes, the one lost is likely down: try another first
		sess = b.reconnect()
		if sess == nil {
			return
		}
		b.log.Info("hypha: broker connection restored", "node", b.nodeName(), "after", time.Since(lostAt).Round(time.Millisecond))
		if b.opts.OnRestore != nil {
			b.opts.OnRestore()
		}
	}
}

// lose marks the broker disconnected; it reports true when Close did it.
func (b *connection) lose(sess *session) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return true
	}
	if b.sess == sess {
		b.sess = nil
		b.ready = make(chan struct{})
	}
	return false
}

// reconnect retries until connected (the new session), or until Close or
// RECONNECT.MAX_ELAPSED (nil). A refused login is retried too: credentials
// get rotated under running services, and the new ones may come in time.
func (b *connection) reconnect() *session {
	bo := newBackoff(b.opts.Reconnect)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-b.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	lastErr := errors.New("no attempt made")
	for attempt := 0; ; attempt++ {
		wait := bo.NextBackOff()
		if wait < 0 {
			b.giveUp(fmt.Errorf("hypha: reconnecting to %s failed for RECONNECT.MAX_ELAPSED %s; giving up: %w",
				b.nodes(), b.opts.Reconnect.MaxElapsed, lastErr))
			return nil
		}
		if sleep(ctx, b.done, wait) != nil {
			return nil
		}
		sess, err := b.establish(ctx)
		if err == nil {
			return sess
		}
		switch {
		case permanent(err):
			b.log.Error("hypha: the broker refused the connection; retrying", "error", err)
		case code(err) == amqp091.PreconditionFailed:
			b.log.Error("hypha: the broker refused the topology this connection declares; retrying", "error", err)
		case attempt == 0:
			b.log.Warn("hypha: reconnect attempt failed; retrying", "error", err)
		default:
			b.log.Debug("hypha: reconnect attempt failed", "error", err)
		}
		lastErr = err
	}
}

// giveUp makes every waiting and later publish or declare fail with err,
// lets Connect be called again, and reports err to Options.OnGiveUp, or logs
// it. After Close there is nothing to report.
func (b *connection) giveUp(err error) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.failed = err
	close(b.ready) // wake the waiters: they find b.failed
	b.ready = make(chan struct{})
	b.mu.Unlock()
	b.connectMu.Lock()
	b.supervised = false
	b.connectMu.Unlock()
	if b.opts.OnGiveUp != nil {
		b.opts.OnGiveUp(err)
	} else {
		b.log.Error(err.Error())
	}
}

// blocked reports whether the broker has blocked the connection (a resource alarm).
func (b *connection) blocked() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.unblocked:
		return false
	default:
		return true
	}
}

// current waits until a session is up and publishing is not blocked,
// bounded by ctx.
func (b *connection) current(ctx context.Context) (*session, error) {
	for {
		b.mu.Lock()
		sess, ready, unblocked, failed, closed := b.sess, b.ready, b.unblocked, b.failed, b.closed
		b.mu.Unlock()
		switch {
		case closed:
			return nil, transport.ErrClosed
		case failed != nil:
			return nil, failed
		case sess == nil:
			select {
			case <-ready:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("broker unavailable: %w", ctx.Err())
			case <-b.done:
				return nil, transport.ErrClosed
			}
		}
		select {
		case <-unblocked:
			return sess, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("broker blocked publishing: %w", ctx.Err())
		case <-b.done:
			return nil, transport.ErrClosed
		}
	}
}

// watchBlocked logs once when the broker blocks the connection (a resource
// alarm) and once when it lets it go, and holds publishers meanwhile.
func (b *connection) watchBlocked(conn *amqp091.Connection) {
	blocked := conn.NotifyBlocked(make(chan amqp091.Blocking, 4))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for bl := range blocked {
			b.mu.Lock()
			if bl.Active {
				b.unblocked = make(chan struct{})
			} else {
				close(b.unblocked)
			}
			b.mu.Unlock()
			if bl.Active {
				b.log.Warn("hypha: broker blocked publishing; publishes wait until it lifts or their deadline passes", "reason", bl.Reason)
			} else {
				b.log.Info("hypha: broker unblocked publishing")
			}
		}
		b.mu.Lock()
		select {
		case <-b.unblocked:
		default:
			close(b.unblocked)
		}
		b.mu.Unlock()
	}()
}
