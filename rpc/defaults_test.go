package rpc

import (
	"testing"

	"github.com/hypha-go/hypha/config"
)

// TestDefaultsMatchConfig keeps the defaults of a zero Config equal to config's, which are written
// out so that reading config links no rpc.
func TestDefaultsMatchConfig(t *testing.T) {
	s := config.DefaultSettings()
	tests := []struct {
		name      string
		got, want any
	}{
		{"RPC_EXCHANGE", DefaultExchange, s.RPCExchange},
		{"RPC_TIMEOUT", defaultTimeout, s.RPCTimeout},
		{"RPC_MAX_IN_FLIGHT", defaultMaxInFlight, s.RPCMaxInFlight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("rpc has %v, config %v", tt.got, tt.want)
			}
		})
	}
}
