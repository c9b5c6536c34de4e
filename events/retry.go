package events

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// Defaults for the zero fields of retryDelay (EVENTS.RETRY_DELAY's), and its bound.
const (
	defaultRetryDelayInitial    = time.Second
	defaultRetryDelayMultiplier = 2.0
	defaultRetryDelayMax        = time.Minute
	// maxRetryDelay bounds retryDelay.Max: a delay is a queue's
	// x-message-ttl, in milliseconds.
	maxRetryDelay = 24 * time.Hour
	// retryJitter is the most a delay is lengthened by, as a fraction of it.
	retryJitter = 0.2
)

// retryDelay paces the retries of a failing event (RequeueOnError). The retry
// after attempt n waits Initial·Multiplier^(n-1), lengthened by a jitter of up
// to a fifth, and never longer than Max. A zero field means its default.
//
// The broker holds the delay, so no worker waits and pending retries survive
// a restart: a retry is published to a delay queue of its handler's queue,
// "<queue>.retry.<milliseconds>", whose x-message-ttl is that delay and which
// dead-letters expired events back to the handler's queue. A queue-wide TTL
// (RabbitMQ expires messages only at the head of a queue) keeps a short delay
// from waiting behind a long one. The jitter is the same for every delay of
// one handler's queue, drawn from its name, so that instances of a service
// declare the same queues and the handlers of one event that fail together
// retry apart.
type retryDelay struct {
	// Initial is the delay of the first retry; 1 s when zero.
	Initial time.Duration
	// Multiplier lengthens each next delay; 1 or more, 2 when zero.
	Multiplier float64
	// Max bounds every delay, jitter included; at most maxRetryDelay,
	// 60 s when zero.
	Max time.Duration
}

// validate reports a setting out of range, naming its config key.
func (r retryDelay) validate() error {
	d := r.withDefaults()
	var errs []error
	if r.Initial < 0 {
		errs = append(errs, fmt.Errorf("hypha: EVENTS.RETRY_DELAY.INITIAL: want a duration > 0, got %s", r.Initial))
	}
	if r.Multiplier < 0 || (r.Multiplier > 0 && r.Multiplier < 1) || math.IsNaN(r.Multiplier) || math.IsInf(r.Multiplier, 0) {
		errs = append(errs, fmt.Errorf("hypha: EVENTS.RETRY_DELAY.MULTIPLIER: want a number >= 1, got %v", r.Multiplier))
	}
	if r.Max < 0 || d.Max > maxRetryDelay {
		errs = append(errs, fmt.Errorf("hypha: EVENTS.RETRY_DELAY.MAX: want a duration > 0 and at most %s, got %s", maxRetryDelay, r.Max))
	} else if d.Max < d.Initial {
		errs = append(errs, fmt.Errorf("hypha: EVENTS.RETRY_DELAY.MAX %s is under EVENTS.RETRY_DELAY.INITIAL %s", d.Max, d.Initial))
	}
	return errors.Join(errs...)
}

func (r retryDelay) withDefaults() retryDelay {
	if r.Initial <= 0 {
		r.Initial = defaultRetryDelayInitial
	}
	if r.Multiplier <= 0 {
		r.Multiplier = defaultRetryDelayMultiplier
	}
	if r.Max <= 0 {
		r.Max = defaultRetryDelayMax
	}
	return r
}

// delay is how long the retry after attempt (1 for the first delivery) of an
// event from the handler's queue named queue waits, in whole milliseconds.
func (r retryDelay) delay(queue string, attempt int) time.Duration {
	r = r.withDefaults()
	h := fnv.New32a()
	h.Write([]byte(queue))
	jitter := 1 + retryJitter*float64(h.Sum32())/(1<<32)
	d := float64(r.Initial) * math.Pow(r.Multiplier, float64(max(attempt, 1)-1)) * jitter
	if d >= float64(r.Max) {
		d = float64(r.Max)
	}
	return max(time.Duration(d).Round(time.Millisecond), time.Millisecond)
}

// queue is the delay queue where the retry after attempt of an event from
// the handler's queue q waits: "<q>.retry.<milliseconds>", durable (for an
// exclusive q, exclusive too, so that it goes with q), with x-message-ttl the
// delay, dead-lettering to q through the default exchange.
func (r retryDelay) queue(q transport.Queue, attempt int) transport.Queue {
	d := r.delay(q.Name, attempt)
	return transport.Queue{
		Name:      fmt.Sprintf("%s.retry.%d", q.Name, d.Milliseconds()),
		Durable:   q.Durable,
		Exclusive: q.Exclusive,
		Args: map[string]any{
			"x-message-ttl":             int32(d.Milliseconds()),
			"x-dead-letter-exchange":    "",
			"x-dead-letter-routing-key": q.Name,
		},
	}
}
