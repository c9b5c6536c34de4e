package memory

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// message is a published message as the broker holds it: a private copy,
// never changed once stored, so that queues can share it.
type message struct {
	transport.Message
	exchange   string
	routingKey string
}

// entry is a message in one queue.
type entry struct {
	seq         uint64    // position in publish order, kept across requeues
	msg         *message  //
	expiresAt   time.Time // zero: never
	redelivered bool
}

// queue is a declared queue: its ready messages and its consumers. All of it
// is guarded by its server's mutex.
type queue struct {
	s     *server
	name  string
	decl  transport.Queue // as declared, Args normalized, without Bindings
	owner *connection     // the connection of an exclusive queue
	args  queueArgs

	ready       []*entry
	consumers   []*consumer // in the order they subscribed
	rr          int         // the consumer to try first
	hadConsumer bool        // for auto-delete
	deleted     bool

	headTimer   *time.Timer // expires the head message
	headAt      time.Time   // when headTimer fires
	headGen     int         // invalidates an older headTimer
	unusedTimer *time.Timer // deletes the queue after x-expires
	unusedGen   int         // invalidates an older unusedTimer
}

// enqueue appends m, hands what it can to the consumers and expires what
// is due.
func (q *queue) enqueue(m *message) {
	now := time.Now()
	q.s.seq++
	e := &entry{seq: q.s.seq, msg: m}
	if m.Expiration > 0 {
		e.expiresAt = now.Add(m.Expiration)
	}
	if q.args.hasTTL {
		if t := now.Add(q.args.ttl); e.expiresAt.IsZero() || t.Before(e.expiresAt) {
			e.expiresAt = t
		}
	}
	q.ready = append(q.ready, e)
	q.dispatch(now)
}

// requeue puts e back in its place among the ready messages, marked
// redelivered, as RabbitMQ does; it keeps its expiry.
func (q *queue) requeue(e *entry) {
	if q.deleted {
		return
	}
	e.redelivered = true
	i := sort.Search(len(q.ready), func(i int) bool { return q.ready[i].seq > e.seq })
	q.ready = slices.Insert(q.ready, i, e)
}

// dispatch hands ready messages to consumers with room, round robin (or to
// the single active consumer), dead-letters the expired ones it meets at the
// head, and sets the timer for the next expiry. A message that expires
// exactly now can still go to a waiting consumer, as with RabbitMQ's
// x-message-ttl of 0.
func (q *queue) dispatch(now time.Time) {
	var dead []*entry
	for len(q.ready) > 0 && !q.deleted {
		e := q.ready[0]
		if !e.expiresAt.IsZero() && e.expiresAt.Before(now) {
			q.pop()
			dead = append(dead, e)
			continue
		}
		c := q.nextConsumer()
		if c == nil {
			break
		}
		q.pop()
		c.deliver(e)
	}
	for len(q.ready) > 0 && !q.ready[0].expiresAt.IsZero() && !q.ready[0].expiresAt.After(now) {
		dead = append(dead, q.pop())
	}
	q.schedule()
	for _, e := range dead {
		q.deadLetter(e, "expired", now)
	}
}

func (q *queue) pop() *entry {
	e := q.ready[0]
	q.ready[0] = nil
	q.ready = q.ready[1:]
	return e
}

// nextConsumer returns the consumer to hand the next message to, or nil when
// none has room.
func (q *queue) nextConsumer() *consumer {
	if q.args.singleActive {
		if len(q.consumers) > 0 && q.consumers[0].hasRoom() {
			return q.consumers[0]
		}
		return nil
	}
	n := len(q.consumers)
	for i := range n {
		c := q.consumers[(q.rr+i)%n]
		if c.hasRoom() {
			q.rr = (q.rr + i + 1) % n
			return c
		}
	}
	return nil
}

// schedule sets the timer that expires the head message: only the head, as
// RabbitMQ looks only there.
func (q *queue) schedule() {
	var at time.Time
	if len(q.ready) > 0 && !q.deleted {
		at = q.ready[0].expiresAt
	}
	if at.Equal(q.headAt) {
		return
	}
	if q.headTimer != nil {
		q.headTimer.Stop()
		q.headTimer = nil
	}
	q.headAt = at
	q.headGen++
	if at.IsZero() {
		return
	}
	gen := q.headGen
	q.headTimer = time.AfterFunc(time.Until(at), func() {
		q.s.mu.Lock()
		defer q.s.mu.Unlock()
		if q.headGen == gen && !q.deleted {
			q.headAt = time.Time{}
			q.dispatch(time.Now())
		}
	})
}

// armUnused starts (or starts again) the x-expires countdown of a queue
// without consumers.
func (q *queue) armUnused() {
	q.disarmUnused()
	if q.args.expires <= 0 || len(q.consumers) > 0 || q.deleted {
		return
	}
	gen := q.unusedGen
	q.unusedTimer = time.AfterFunc(q.args.expires, func() {
		q.s.mu.Lock()
		defer q.s.mu.Unlock()
		if q.unusedGen == gen && len(q.consumers) == 0 {
			q.s.deleteQueue(q)
		}
	})
}

func (q *queue) disarmUnused() {
	q.unusedGen++
	if q.unusedTimer != nil {
		q.unusedTimer.Stop()
		q.unusedTimer = nil
	}
}

func (q *queue) stopTimers() {
	q.disarmUnused()
	q.headGen++
	if q.headTimer != nil {
		q.headTimer.Stop()
		q.headTimer = nil
	}
}

// removeConsumer takes c off the queue; the last consumer gone deletes an
// auto-delete queue or starts the x-expires countdown.
func (q *queue) removeConsumer(c *consumer) {
	i := slices.Index(q.consumers, c)
	if i < 0 {
		return
	}
	q.consumers = slices.Delete(q.consumers, i, i+1)
	if q.rr > i {
		q.rr--
	}
	if len(q.consumers) > 0 {
		q.rr %= len(q.consumers)
		return
	}
	q.rr = 0
	if q.decl.AutoDelete && q.hadConsumer {
		q.s.deleteQueue(q)
		return
	}
	q.armUnused()
}

// deadLetter republishes e to the queue's dead-letter exchange, if it has
// one, with an x-death header saying why; without one the message is
// dropped. As RabbitMQ does, it drops the message's expiration, skips an
// exchange that does not exist, and skips queues that would close a cycle
// of dead-lettering in which no consumer rejected the message.
func (q *queue) deadLetter(e *entry, reason string, now time.Time) {
	if !q.args.hasDLX {
		return
	}
	m := &message{Message: e.msg.Message, exchange: q.args.dlx, routingKey: e.msg.routingKey}
	if q.args.hasDLK {
		m.routingKey = q.args.dlk
	}
	m.Expiration = 0
	m.Headers = withDeath(e.msg, q.name, reason, now)
	targets, err := q.s.route(m.exchange, m.routingKey)
	if err != nil {
		return
	}
	for _, t := range targets {
		if !cycle(m.Headers, t.name) {
			t.enqueue(m)
		}
	}
}

// withDeath returns a copy of m's headers with its x-death record updated
// for a dead-lettering from queue for reason, as RabbitMQ keeps it: one
// entry per queue and reason, with a count, the latest first, and
// x-first-death-* and x-last-death-* headers.
func withDeath(m *message, queue, reason string, now time.Time) map[string]any {
	h := clone(m.Headers)
	if h == nil {
		h = map[string]any{}
	}
	death := map[string]any{
		"count": int64(1), "reason": reason, "queue": queue, "time": time.Unix(now.Unix(), 0),
		"exchange": m.exchange, "routing-keys": []any{m.routingKey},
	}
	if m.Expiration > 0 {
		death["original-expiration"] = fmt.Sprint(m.Expiration.Milliseconds())
	}
	var deaths []any
	old, _ := h["x-death"].([]any)
	for _, d := range old {
		if t, ok := d.(map[string]any); ok && t["queue"] == queue && t["reason"] == reason {
			if n, ok := t["count"].(int64); ok {
				death["count"] = n + 1
			}
			continue
		}
		deaths = append(deaths, d)
	}
	h["x-death"] = append([]any{death}, deaths...)
	if _, ok := h["x-first-death-reason"]; !ok {
		h["x-first-death-reason"], h["x-first-death-queue"], h["x-first-death-exchange"] = reason, queue, m.exchange
	}
	h["x-last-death-reason"], h["x-last-death-queue"], h["x-last-death-exchange"] = reason, queue, m.exchange
	return h
}

// cycle reports whether dead-lettering a message with headers h to the
// queue named target would repeat a cycle no consumer rejected in.
func cycle(h map[string]any, target string) bool {
	deaths, _ := h["x-death"].([]any)
	seen := false
	for _, d := range deaths {
		t, _ := d.(map[string]any)
		if t["reason"] == "rejected" {
			return false
		}
		if t["queue"] == target {
			seen = true
		}
	}
	return seen
}
