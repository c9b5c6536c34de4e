package amqp

import (
	"testing"

	"github.com/hypha-go/hypha/transport"
)

// TestIsQuorum: QueueType quorum declares durable queues that are neither
// exclusive nor auto-delete, and set no x-queue-type of their own, as quorum
// queues; QueueType classic none.
func TestIsQuorum(t *testing.T) {
	for _, tt := range []struct {
		q         transport.Queue
		queueType string
		want      bool
	}{
		{transport.Queue{Name: "rpc-calculator", Durable: true}, QueueQuorum, true},
		{transport.Queue{Name: "evt-orders-order_created--mailer.audit-1", Exclusive: true, AutoDelete: true}, QueueQuorum, false},
		{transport.Queue{Name: "auto", Durable: true, AutoDelete: true}, QueueQuorum, false},
		{transport.Queue{Name: "own", Durable: true, Args: map[string]any{"x-queue-type": "stream"}}, QueueQuorum, false},
		{transport.Queue{Name: "rpc-calculator", Durable: true}, QueueClassic, false},
		{transport.Queue{Name: "rpc-calculator", Durable: true}, "", false},
	} {
		if got := isQuorum(tt.q, tt.queueType); got != tt.want {
			t.Errorf("isQuorum(%+v, %q) = %v, want %v", tt.q, tt.queueType, got, tt.want)
		}
	}
}
