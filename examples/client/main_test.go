package main

import (
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/transport"
)

func TestDialConfigFollowsConfig(t *testing.T) {
	s := config.DefaultSettings()
	s.Reconnect = config.ReconnectPolicy{IntervalStart: time.Second, IntervalMax: 9 * time.Second, MaxElapsed: time.Minute}
	s.RPCRetryPolicy = config.RetryPolicy{MaxRetries: 7, IntervalStart: 1, IntervalStep: 2, IntervalMax: 3}
	tests := []struct {
		name      string
		got, want any
	}{
		{"URI", dialConfig(s).URI, s.AMQPURI},
		{"Exchange", dialConfig(s).Exchange, s.RPCExchange},
		{"Timeout", dialConfig(s).Timeout, s.RPCTimeout},
		{"Heartbeat", dialConfig(s).Heartbeat, s.Heartbeat},
		{"RECONNECT", dialConfig(s).Reconnect, transport.ReconnectPolicy{IntervalStart: time.Second, IntervalMax: 9 * time.Second,
			MaxElapsed: time.Minute}},
		{"RPC_RETRY_POLICY", dialConfig(s).Retry, transport.RetryPolicy{MaxRetries: 7, IntervalStart: 1, IntervalStep: 2, IntervalMax: 3}},
		{"RPC_PERSISTENT default", dialConfig(s).Transient, false},
		{"RPC_PERSISTENT false", dialConfig(transientSettings(s)).Transient, true},
		{"RPC_REPLY_KEY_PREFIX", dialConfig(prefixSettings(s)).ReplyKeyPrefix, "reply.web"},
		{"RPC_RESEND default", dialConfig(s).NoResend, false},
		{"RPC_RESEND false", dialConfig(noResendSettings(s)).NoResend, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %+v, want %+v", tt.got, tt.want)
			}
		})
	}
}

// noResendSettings is s with RPC_RESEND false.
func noResendSettings(s config.Settings) config.Settings {
	s.RPCResend = false
	return s
}

// transientSettings is s with RPC_PERSISTENT false.
func transientSettings(s config.Settings) config.Settings {
	s.RPCPersistent = false
	return s
}

// prefixSettings is s with RPC_REPLY_KEY_PREFIX reply.web.
func prefixSettings(s config.Settings) config.Settings {
	s.RPCReplyKeyPrefix = "reply.web"
	return s
}
