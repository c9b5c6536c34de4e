package framework

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/amqp"
)

// TestConfigDefaultsMatchPackages keeps config's defaults, written out so that reading config links
// none of these packages, equal to the defaults of the packages that use them.
func TestConfigDefaultsMatchPackages(t *testing.T) {
	tests := []struct {
		name      string
		got, want any
	}{
		{"RPC_EXCHANGE", config.DefaultRPCExchange, rpc.DefaultExchange},
		{"RPC_TIMEOUT", config.DefaultRPCTimeout, rpc.DefaultTimeout},
		{"RPC_MAX_IN_FLIGHT", config.DefaultRPCMaxInFlight, rpc.DefaultMaxInFlight},
		{"PARENT_CALLS_TRACKED", config.DefaultParentCallsTracked, rpc.DefaultParentCallsTracked},
		{"PARENT_CALLS_TRACKED at most", config.MaxParentCallsTracked, contextdata.MaxCallIDs - 1},
		{"HEARTBEAT", config.DefaultHeartbeat, amqp.DefaultHeartbeat},
		{"RECONNECT.INTERVAL_START", config.DefaultReconnectIntervalStart, amqp.DefaultReconnectIntervalStart},
		{"RECONNECT.INTERVAL_MAX", config.DefaultReconnectIntervalMax, amqp.DefaultReconnectIntervalMax},
		{"MAX_MESSAGE_SIZE", int64(config.DefaultMaxMessageSize), int64(amqp.DefaultMaxMessageSize)},
		{"EVENTS.MAX_RETRIES", config.DefaultEventMaxRetries, events.DefaultMaxRetries},
		{"EVENTS.PUBLISH_TIMEOUT", config.DefaultEventPublishTimeout, events.DefaultPublishTimeout},
		{"EVENTS.HANDLER_TIMEOUT", config.DefaultEventHandlerTimeout, events.DefaultHandlerTimeout},
		{"EVENTS.RETRY_DELAY.INITIAL", config.DefaultEventRetryInitial, events.DefaultRetryDelayInitial},
		{"EVENTS.RETRY_DELAY.MULTIPLIER", config.DefaultEventRetryMultiplier, events.DefaultRetryDelayMultiplier},
		{"EVENTS.RETRY_DELAY.MAX", config.DefaultEventRetryMax, events.DefaultRetryDelayMax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("config has %v, the package %v", tt.got, tt.want)
			}
		})
	}
}

// TestNewLogger checks that LOG_FORMAT and LOG_LEVEL both shape the app's own logger.
func TestNewLogger(t *testing.T) {
	tests := []struct {
		format string
		level  slog.Level
		json   bool
	}{
		{"text", slog.LevelInfo, false},
		{"json", slog.LevelInfo, true},
		{"json", slog.LevelWarn, true},
		{"text", slog.LevelDebug, false},
	}
	for _, tt := range tests {
		t.Run(tt.format+"/"+tt.level.String(), func(t *testing.T) {
			s := config.DefaultSettings()
			s.LogFormat, s.LogLevel = tt.format, tt.level
			var buf bytes.Buffer
			log := newLogger(&buf, s)
			log.Debug("at debug")
			log.Info("at info")
			log.Warn("at warn")
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if want := 1 + int(slog.LevelWarn-tt.level)/4; len(lines) != want {
				t.Fatalf("%d lines at %s, want %d:\n%s", len(lines), tt.level, want, buf.String())
			}
			for _, line := range lines {
				if isJSON := json.Valid([]byte(line)); isJSON != tt.json {
					t.Fatalf("line %q: JSON %v, want %v", line, isJSON, tt.json)
				}
			}
		})
	}
}
