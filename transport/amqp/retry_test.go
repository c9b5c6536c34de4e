package amqp

import (
	"testing"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// The publish retry waits grow linearly, as kombu's do, up to IntervalMax.
func TestRetryInterval(t *testing.T) {
	r := transport.RetryPolicy{IntervalStart: 100 * time.Millisecond, IntervalStep: 200 * time.Millisecond, IntervalMax: 400 * time.Millisecond}
	for n, want := range []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond} {
		if got := retryInterval(r, n); got != want {
			t.Errorf("retry %d: wait %v, want %v", n, got, want)
		}
	}
	r.IntervalMax = 0
	if got := retryInterval(r, 10); got != 2100*time.Millisecond {
		t.Errorf("no IntervalMax, retry 10: wait %v, want 2.1s", got)
	}
}
