package transport

import "time"

// ReconnectPolicy paces reaching a broker again after the connection is
// lost, and the first connection while the broker is not up yet: an
// exponential, jittered backoff from IntervalStart to IntervalMax.
type ReconnectPolicy struct {
	IntervalStart time.Duration // first wait; the implementation's default when zero
	IntervalMax   time.Duration // longest wait; the implementation's default when zero
	MaxElapsed    time.Duration // give up after this long; zero retries forever
}

// RetryPolicy is nameko's (kombu's) linear publish retry policy: wait
// IntervalStart, then IntervalStep longer each time, at most IntervalMax,
// for at most MaxRetries retries of a publish the broker refused.
type RetryPolicy struct {
	MaxRetries    int
	IntervalStart time.Duration
	IntervalStep  time.Duration
	IntervalMax   time.Duration
}
