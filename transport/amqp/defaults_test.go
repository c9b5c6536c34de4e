package amqp

import (
	"testing"

	"github.com/hypha-go/hypha/config"
)

// TestDefaultsMatchConfig keeps the defaults of zero Options equal to config's, which are written out
// so that reading config links no amqp.
func TestDefaultsMatchConfig(t *testing.T) {
	s := config.DefaultSettings()
	tests := []struct {
		name      string
		got, want any
	}{
		{"HEARTBEAT", defaultHeartbeat, s.Heartbeat},
		{"RECONNECT.INTERVAL_START", defaultReconnectIntervalStart, s.Reconnect.IntervalStart},
		{"RECONNECT.INTERVAL_MAX", defaultReconnectIntervalMax, s.Reconnect.IntervalMax},
		{"MAX_MESSAGE_SIZE", int64(defaultMaxMessageSize), s.MaxMessageSize},
		{"QUEUE_DELIVERY_LIMIT", defaultDeliveryLimit, s.QueueDeliveryLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("amqp has %v, config %v", tt.got, tt.want)
			}
		})
	}
}
