package framework_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
)

// TestNewWarnsOfConfigTypos checks that New logs, once, a top-level key spelled almost like one of
// Hypha's, and nothing about a service's own keys.
func TestNewWarnsOfConfigTypos(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   string // "" for no warning
	}{
		{"typo", map[string]any{"MAX_WORKER": 4}, "config MAX_WORKER is not a Hypha key: did you mean MAX_WORKERS?"},
		{"lower-case typo", map[string]any{"rpc_exchang": "x"}, "config rpc_exchang is not a Hypha key: did you mean RPC_EXCHANGE?"},
		{"service key", map[string]any{"DB_DSN": "postgres://db"}, ""},
		{"Hypha key", map[string]any{"max_workers": 4}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
			_, err := framework.New(framework.Logger(log), framework.ConfigValues(tt.values),
				framework.Service(calculator.Name, calculator.New))
			if err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if tt.want == "" && got != "" || tt.want != "" && strings.Count(got, tt.want) != 1 {
				t.Fatalf("logged %q, want %q once", got, tt.want)
			}
		})
	}
}
