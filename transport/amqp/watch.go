package amqp

import (
	"fmt"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// defaultTopologyCheck is how often a connection checks the topology
// declared through it, when Options.TopologyCheck is zero.
const defaultTopologyCheck = 5 * time.Second

// watchTopology checks the recorded topology every Options.TopologyCheck
// while connected, until Close.
//
// A user with configure on an exchange can delete it while its owners are
// connected; RabbitMQ then drops every binding to it, and nothing tells the
// connections that declared them. A reconnect declares it all again, but
// none comes. So the connection declares its exchanges, queues and bindings
// again on a timer: each is idempotent, a few round trips per period for a
// service's handful, and it also mends an exchange deleted and declared
// again by someone else, which a check for its existence would miss. An
// exchange found missing, or there with another type, makes Ready fail until
// the topology is whole again.
func (b *connection) watchTopology() {
	defer b.wg.Done()
	every := b.opts.TopologyCheck
	if every == 0 {
		every = defaultTopologyCheck
	}
	if every < 0 {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-b.done:
			return
		}
		if conn := b.live(); conn != nil {
			b.checkTopology(conn)
		}
	}
}

// checkTopology finds the exchanges that are gone, then declares the whole
// recorded topology again on conn, and keeps what went wrong for Ready.
func (b *connection) checkTopology(conn *amqp091.Connection) {
	select {
	case b.declaring <- struct{}{}:
		defer func() { <-b.declaring }()
	case <-b.done:
		return
	}
	b.mu.Lock()
	var owned []string
	for name, ex := range b.exchanges {
		if !ex.Passive {
			owned = append(owned, name)
		}
	}
	was := b.topology
	b.mu.Unlock()
	for _, name := range owned {
		err := onChannel(conn, func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclarePassive(name, "", false, false, false, false, nil)
		})
		if code(err) == amqp091.NotFound {
			b.log.Warn("hypha: an exchange this service declared is gone, with its bindings; declaring them again",
				"exchange", name)
			b.setTopology(errTopology(name))
			was = errTopology(name)
		}
	}
	err := b.redeclare(conn)
	if conn.IsClosed() {
		return // the reconnect declares it all and says what went wrong
	}
	b.setTopology(err)
	switch {
	case err != nil:
		b.log.Error("hypha: the broker's topology is not as this connection declared it; checking again in a while",
			"error", err)
	case was != nil:
		b.log.Info("hypha: the topology is whole again")
	}
}

// errTopology is what Ready says while the exchange named name is missing.
func errTopology(name string) error {
	return fmt.Errorf("hypha: exchange %q was gone; declaring it again with its bindings", name)
}

func (b *connection) setTopology(err error) {
	b.mu.Lock()
	b.topology = err
	b.mu.Unlock()
}
