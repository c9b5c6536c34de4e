package events_test

import (
	"fmt"
	"testing"

	"github.com/hypha-go/hypha/events"
)

// TestOptionString: an option prints as the call that made it.
func TestOptionString(t *testing.T) {
	tests := []struct {
		opt  events.Option
		want string
	}{
		{events.Type(events.Broadcast), "events.Type(events.Broadcast)"},
		{events.Type(events.ServicePool), "events.Type(events.ServicePool)"},
		{events.Type(events.Singleton), "events.Type(events.Singleton)"},
		{events.BroadcastIdentifier("pod-1"), `events.BroadcastIdentifier("pod-1")`},
		{events.UnreliableDelivery(), "events.UnreliableDelivery()"},
		{events.RequeueOnError(), "events.RequeueOnError()"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := fmt.Sprint(tt.opt); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
