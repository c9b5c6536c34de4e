package framework

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/config"
)

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
