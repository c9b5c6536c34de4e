package rpc_test

import (
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/rpc"
)

// TestConfigFromTakesEveryKey: each RPC_* key of the loaded config reaches
// the client Config, so that a standalone client calls as a service does.
func TestConfigFromTakesEveryKey(t *testing.T) {
	s := config.DefaultSettings()
	s.RPCExchange, s.RPCTimeout, s.RPCMaxInFlight = "other-rpc", 7*time.Second, 3
	s.RPCPersistent, s.RPCResend, s.RPCReplyKeyPrefix = false, false, "reply.web"
	got := rpc.ConfigFrom(s)
	for _, tt := range []struct {
		key       string
		got, want any
	}{
		{"RPC_EXCHANGE", got.Exchange, "other-rpc"},
		{"RPC_TIMEOUT", got.Timeout, 7 * time.Second},
		{"RPC_MAX_IN_FLIGHT", got.MaxInFlight, 3},
		{"RPC_PERSISTENT", got.Transient, true},
		{"RPC_RESEND", got.NoResend, true},
		{"RPC_REPLY_KEY_PREFIX", got.ReplyKeyPrefix, "reply.web"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.key, tt.got, tt.want)
		}
	}
	if d := rpc.ConfigFrom(config.DefaultSettings()); d.Transient || d.NoResend {
		t.Errorf("the defaults send persistent requests and resend them, got %+v", d)
	}
}
