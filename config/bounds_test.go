package config

import (
	"testing"

	"github.com/hypha-go/hypha/contextdata"
)

// TestParentCallsTrackedBound keeps PARENT_CALLS_TRACKED's bound, written out so that reading config
// links little, equal to what a message may carry: the call-id stack keeps the parents and the call.
func TestParentCallsTrackedBound(t *testing.T) {
	if maxParentCallsTracked != contextdata.MaxCallIDs-1 {
		t.Fatalf("config bounds PARENT_CALLS_TRACKED at %d, contextdata.MaxCallIDs is %d", maxParentCallsTracked, contextdata.MaxCallIDs)
	}
}
