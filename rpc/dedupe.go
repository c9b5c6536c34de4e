package rpc

import (
	"context"
	"sync"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// Bounds of the record of started requests a server keeps to drop copies.
const (
	// dedupeWindow is how long a request without a deadline is remembered;
	// one with a deadline is remembered until then, at most this long. A
	// copy that comes after its deadline is dropped as expired anyway.
	dedupeWindow = 5 * time.Minute
	// dedupeLimit is the most requests remembered at once (each costs
	// about 300 bytes); past it the oldest is forgotten first.
	dedupeLimit = 100_000
)

// seenRequests remembers the requests one server instance has started, by
// message id and correlation id, so that a copy of one (a caller sending
// again a request whose confirm a lost connection swallowed, or the broker
// redelivering one whose ack was lost) is not run a second time. It is
// bounded in time and in count; it knows nothing of other instances.
type seenRequests struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*seenRun
	order   []*seenRun // oldest first; may hold runs already forgotten
}

// seenRun is one request started on this instance.
type seenRun struct {
	key   string
	until time.Time
	// done closes when the run has ended; answered, set before, says
	// whether its caller surely got its reply (or wanted none).
	done     chan struct{}
	answered bool
}

func newSeenRequests(limit int, window time.Duration) *seenRequests {
	return &seenRequests{limit: limit, window: window, now: time.Now, entries: map[string]*seenRun{}}
}

// requestKey names a request for dedupe: its message id with its
// correlation id; empty (no dedupe) for a request without a message id, as
// nameko's are.
func requestKey(d transport.Delivery) string {
	if d.MessageID == "" {
		return ""
	}
	return d.MessageID + "\x00" + d.CorrelationID
}

// begin records the start of the request key, remembered until deadline
// (or the window, whichever comes first). It returns the new run, or, when
// a run of the same request is remembered, that prior run instead. A
// request with an empty key gets a run nobody else can find.
func (s *seenRequests) begin(key string, deadline time.Time) (run, prior *seenRun) {
	now := s.now()
	until := now.Add(s.window)
	if !deadline.IsZero() && deadline.Before(until) {
		until = deadline
	}
	run = &seenRun{key: key, until: until, done: make(chan struct{})}
	if key == "" {
		return run, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(now)
	if p, ok := s.entries[key]; ok && now.Before(p.until) {
		return nil, p
	}
	s.entries[key] = run
	s.order = append(s.order, run)
	s.evict(now)
	return run, nil
}

// finish ends run. A run not answered (abandoned to the queue, or its reply
// perhaps lost with the connection) is forgotten, so that its copy runs.
func (s *seenRequests) finish(run *seenRun, answered bool) {
	if run == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	run.answered = answered
	if !answered && s.entries[run.key] == run {
		delete(s.entries, run.key)
	}
	close(run.done)
}

// evict forgets the oldest runs while there are more than the limit or
// their time is up. s.mu is held.
func (s *seenRequests) evict(now time.Time) {
	for len(s.order) > 0 && (len(s.order) > s.limit || !now.Before(s.order[0].until)) {
		old := s.order[0]
		s.order[0] = nil
		s.order = s.order[1:]
		if s.entries[old.key] == old {
			delete(s.entries, old.key)
		}
	}
}

// size is the number of runs remembered.
func (s *seenRequests) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}

// claim starts the run of d on this instance. When a copy of d started
// here before, it waits for that run: if that one answered, d is a
// duplicate, acked and dropped; if it was abandoned, d runs instead. It
// returns false when it settled d itself.
func (s *server) claim(ctx context.Context, d transport.Delivery, call *CallInfo) (*seenRun, bool) {
	key := requestKey(d)
	var expiry <-chan time.Time
	for {
		run, prior := s.seen.begin(key, call.Deadline)
		if prior == nil {
			return run, true
		}
		if expiry == nil && !call.Deadline.IsZero() {
			t := time.NewTimer(time.Until(call.Deadline))
			defer t.Stop()
			expiry = t.C
		}
		select {
		case <-prior.done:
			if prior.answered {
				s.duplicate(d, call)
				return nil, false
			}
		case <-expiry:
			s.expired(call)
			_ = d.Ack()
			return nil, false
		case <-ctx.Done():
			_ = d.Nack(true) // stopping or lost: it comes back
			return nil, false
		}
	}
}

// duplicate acks and drops a copy of a request this instance already
// answered: logged at debug, counted through OnDuplicate.
func (s *server) duplicate(d transport.Delivery, call *CallInfo) {
	s.log.Debug("hypha: dropping a copy of a request already answered", "method", call.Method,
		"message_id", d.MessageID, "correlation_id", d.CorrelationID, "redelivered", d.Redelivered)
	if s.cfg.OnDuplicate != nil {
		s.cfg.OnDuplicate(s.methodLabel(call.Method))
	}
	_ = d.Ack()
}
