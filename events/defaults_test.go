package events

import (
	"testing"

	"github.com/hypha-go/hypha/config"
)

// TestDefaultsMatchConfig keeps the defaults of zero configs equal to config's, which are written out
// so that reading config links no events.
func TestDefaultsMatchConfig(t *testing.T) {
	s := config.DefaultSettings().Events
	tests := []struct {
		name      string
		got, want any
	}{
		{"EVENTS.PUBLISH_TIMEOUT", defaultPublishTimeout, s.PublishTimeout},
		{"EVENTS.HANDLER_TIMEOUT", defaultHandlerTimeout, s.HandlerTimeout},
		{"EVENTS.RETRY_DELAY.INITIAL", defaultRetryDelayInitial, s.RetryDelay.Initial},
		{"EVENTS.RETRY_DELAY.MULTIPLIER", defaultRetryDelayMultiplier, s.RetryDelay.Multiplier},
		{"EVENTS.RETRY_DELAY.MAX", defaultRetryDelayMax, s.RetryDelay.Max},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("events has %v, config %v", tt.got, tt.want)
			}
		})
	}
}
