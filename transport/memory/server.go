package memory

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/hypha-go/hypha/transport"
)

// Exchange kinds, as transport names them.
const (
	topic  = transport.Topic
	direct = transport.Direct
	fanout = transport.Fanout
)

// The channel errors RabbitMQ would raise, wrapped by the errors returned
// here so that their text reads like RabbitMQ's.
var (
	errNotFound     = errors.New("NOT_FOUND")           // 404
	errPrecondition = errors.New("PRECONDITION_FAILED") // 406
	errLocked       = errors.New("RESOURCE_LOCKED")     // 405
	errRefused      = errors.New("ACCESS_REFUSED")      // 403
	errInvalid      = errors.New("COMMAND_INVALID")     // 503
	errUnsupported  = errors.New("not supported by the embedded broker")
)

// server is one named in-process broker: what a RabbitMQ virtual host holds.
// Its mutex guards all of its state, and that of its queues, consumers and
// connections.
type server struct {
	name string

	mu        sync.Mutex
	exchanges map[string]*exchange
	queues    map[string]*queue
	conns     map[*connection]struct{}
	seq       uint64 // orders messages within queues
	tags      uint64 // delivery tags
}

// exchange is a declared exchange and its bindings.
type exchange struct {
	transport.Exchange
	bindings   []binding
	hadBinding bool // for auto-delete
}

// binding routes from an exchange to the queue named queue.
type binding struct{ queue, key string }

func newServer(name string) *server {
	s := &server{name: name, exchanges: map[string]*exchange{}, queues: map[string]*queue{}, conns: map[*connection]struct{}{}}
	for _, kind := range []string{direct, topic, fanout} {
		name := "amq." + kind
		s.exchanges[name] = &exchange{Exchange: transport.Exchange{Name: name, Kind: kind, Durable: true}}
	}
	return s
}

// declareExchange creates ex, or checks that the exchange of its name is
// declared alike. s.mu is held.
func (s *server) declareExchange(ex transport.Exchange) error {
	switch {
	case ex.Name == "" || strings.HasPrefix(ex.Name, "amq."):
		return fmt.Errorf("%w - exchange name %q is reserved", errRefused, ex.Name)
	case ex.Kind != topic && ex.Kind != direct && ex.Kind != fanout:
		return fmt.Errorf("%w - invalid exchange type %q (%w)", errInvalid, ex.Kind, errUnsupported)
	}
	old, ok := s.exchanges[ex.Name]
	switch {
	case !ok:
		ex.Passive = false
		s.exchanges[ex.Name] = &exchange{Exchange: ex}
		return nil
	case ex.Passive:
		return nil
	}
	for _, c := range []struct {
		arg       string
		was, want any
	}{{"type", old.Kind, ex.Kind}, {"durable", old.Durable, ex.Durable}, {"auto_delete", old.AutoDelete, ex.AutoDelete}} {
		if c.was != c.want {
			return fmt.Errorf("%w - inequivalent arg '%s' for exchange '%s': received '%v' but current is '%v'",
				errPrecondition, c.arg, ex.Name, c.want, c.was)
		}
	}
	return nil
}

// bind adds a binding from the exchange named exName to q. s.mu is held.
func (s *server) bind(q *queue, b transport.Binding) error {
	if b.Exchange == "" {
		return fmt.Errorf("%w - operation not permitted on the default exchange", errRefused)
	}
	ex, ok := s.exchanges[b.Exchange]
	if !ok {
		return fmt.Errorf("%w - no exchange '%s'", errNotFound, b.Exchange)
	}
	bd := binding{queue: q.name, key: b.RoutingKey}
	if !slices.Contains(ex.bindings, bd) {
		ex.bindings = append(ex.bindings, bd)
		ex.hadBinding = true
	}
	return nil
}

// unbindAll removes every binding to the queue named name, deleting the
// auto-delete exchanges left without one. s.mu is held.
func (s *server) unbindAll(name string) {
	for exName, ex := range s.exchanges {
		ex.bindings = slices.DeleteFunc(ex.bindings, func(b binding) bool { return b.queue == name })
		if ex.AutoDelete && ex.hadBinding && len(ex.bindings) == 0 {
			delete(s.exchanges, exName)
		}
	}
}

// route returns the queues a message published to exName with key reaches,
// each once, or an error when there is no such exchange. s.mu is held.
func (s *server) route(exName, key string) ([]*queue, error) {
	if exName == "" {
		if q, ok := s.queues[key]; ok {
			return []*queue{q}, nil
		}
		return nil, nil
	}
	ex, ok := s.exchanges[exName]
	if !ok {
		return nil, fmt.Errorf("%w - no exchange '%s'", errNotFound, exName)
	}
	var out []*queue
	for _, b := range ex.bindings {
		if !matches(ex.Kind, b.key, key) {
			continue
		}
		if q := s.queues[b.queue]; q != nil && !slices.Contains(out, q) {
			out = append(out, q)
		}
	}
	return out, nil
}

// publish routes m and puts a copy in each queue it reaches, returning how
// many that was. s.mu is held.
func (s *server) publish(m *message) (int, error) {
	queues, err := s.route(m.exchange, m.routingKey)
	if err != nil {
		return 0, err
	}
	for _, q := range queues {
		q.enqueue(m)
	}
	return len(queues), nil
}

// deleteQueue removes q with its bindings; its messages are dropped and its
// consumers cancelled, as RabbitMQ does. s.mu is held.
func (s *server) deleteQueue(q *queue) {
	if q.deleted {
		return
	}
	q.deleted = true
	delete(s.queues, q.name)
	s.unbindAll(q.name)
	q.stopTimers()
	q.ready = nil
	for _, c := range q.consumers {
		c.cancelByBroker()
	}
	q.consumers = nil
}

// shutdown closes every connection and stops every timer. s.mu is held.
func (s *server) shutdown() {
	for conn := range s.conns {
		conn.closeLocked()
	}
	for _, q := range s.queues {
		q.stopTimers()
	}
	s.queues = map[string]*queue{}
	s.exchanges = map[string]*exchange{}
}
