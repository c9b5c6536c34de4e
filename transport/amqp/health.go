package amqp

import (
	"errors"
	"fmt"
	"slices"
)

// errDisconnected is what Ready reports while the connection is down.
var errDisconnected = errors.New("hypha: not connected to the broker")

// Connected reports whether the connection is up now; it is false while
// reconnecting, after giving up and after Close.
func (b *connection) Connected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sess != nil && !b.closed
}

// Ready reports nil when the broker can take work: connected, the topology
// declared through it whole when last checked, and every consumer not
// cancelled consuming on a live channel. Otherwise it says what is missing
// (not connected, an exchange gone or of another type, or the queue of a
// consumer that is down), for readiness probes.
func (b *connection) Ready() error {
	b.mu.Lock()
	up := b.sess != nil && !b.closed
	consumers := b.consumerList()
	topology := b.topology
	b.mu.Unlock()
	if !up {
		return errDisconnected
	}
	if topology != nil {
		return topology
	}
	var down []string
	for _, c := range consumers {
		if !c.active() {
			down = append(down, c.opts.Queue)
		}
	}
	if len(down) == 0 {
		return nil
	}
	slices.Sort(down)
	return fmt.Errorf("hypha: not consuming queue %q", down[0])
}

// active reports whether the consumer runs on a live channel, or was
// cancelled on purpose (then it is not missing).
func (c *consumer) active() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cancelled || c.ch != nil && !c.ch.IsClosed()
}
