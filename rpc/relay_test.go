package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
)

// logBuffer collects a logger's JSON lines, from any goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lines returns the records logged for method, decoded.
func (b *logBuffer) lines(t *testing.T, method string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["method"] == method {
			out = append(out, rec)
		}
	}
	return out
}

// Two services' errors that share Python's exc_type but not their definition.
var (
	errOrderInvalid   = &rpc.RemoteError{ExcType: "ValueError", ExcPath: "github.com/acme/orders.ValueError", Value: "invalid order"}
	errBatchTooLarge  = &rpc.RemoteError{ExcType: "ValueError", ExcPath: "github.com/acme/users.ValueError", Value: "batch too large"}
	errLocalFrontFail = errors.New("front's own failure")
)

// serveRelay runs "back", whose methods fail in several ways, and "front",
// whose method of each name calls back's and returns what it gets, declaring
// errOrderInvalid expected.
func serveRelay(t *testing.T, prefix string, cfg rpc.ServerConfig) (front *rpc.Proxy, logs *logBuffer) {
	t.Helper()
	serve(t, prefix+"_back", 2, func(r *entrypoint.Registry) {
		rpc.Handle(r, "invalid", func(context.Context, struct{}) (any, error) { return nil, errOrderInvalid })
		rpc.Handle(r, "too_large", func(context.Context, struct{}) (any, error) { return nil, errBatchTooLarge })
		rpc.Handle(r, "panic", func(context.Context, struct{}) (any, error) { panic("deep down") })
	})
	back := newClient(t, 0).Proxy(prefix + "_back")
	logs = &logBuffer{}
	cfg.Service, cfg.Pool, cfg.Logger = prefix+"_front", worker.NewPool(2), logs.logger()
	serveWith(t, cfg, func(r *entrypoint.Registry) {
		for _, m := range []string{"invalid", "too_large", "panic"} {
			rpc.Handle(r, m, func(ctx context.Context, _ struct{}) (any, error) {
				return nil, back.Call(ctx, m, nil, nil)
			}, rpc.Expected(errOrderInvalid))
		}
		rpc.Handle(r, "local", func(context.Context, struct{}) (any, error) { return nil, errLocalFrontFail },
			rpc.Expected(errOrderInvalid))
		rpc.Handle(r, "local_panic", func(context.Context, struct{}) (any, error) { panic("up here") })
	})
	return newClient(t, 0).Proxy(prefix + "_front"), logs
}

func TestRelayedErrors(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	metrics, err := telemetry.Metrics(mp)
	if err != nil {
		t.Fatal(err)
	}
	front, logs := serveRelay(t, "relay", rpc.ServerConfig{Interceptors: []entrypoint.Interceptor{metrics}})
	ctx := context.Background()

	tests := []struct {
		method      string
		errIs       error
		wantLevel   string
		wantRelayed bool
		wantOutcome string
	}{
		{method: "invalid", errIs: errOrderInvalid, wantLevel: "INFO", wantRelayed: true, wantOutcome: "expected_error"},
		{method: "too_large", errIs: errBatchTooLarge, wantLevel: "ERROR", wantRelayed: true, wantOutcome: "remote_error"},
		{method: "panic", errIs: &rpc.RemoteError{ExcType: "Panic", ExcPath: "runtime.Panic"}, wantLevel: "ERROR", wantRelayed: true, wantOutcome: "remote_error"},
		{method: "local", wantLevel: "ERROR", wantOutcome: "error"},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			err := front.Call(ctx, tt.method, nil, nil)
			if err == nil || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
				t.Fatalf("err = %v, want %v", err, tt.errIs)
			}
			if tt.method == "too_large" && errors.Is(err, errOrderInvalid) {
				t.Errorf("users' ValueError matches orders' ValueError")
			}
			lines := logs.lines(t, tt.method)
			if len(lines) != 1 {
				t.Fatalf("logged %d lines for %s, want 1: %v", len(lines), tt.method, lines)
			}
			if got := lines[0]["level"]; got != tt.wantLevel {
				t.Errorf("level = %v, want %s", got, tt.wantLevel)
			}
			if got := lines[0]["relayed"] == true; got != tt.wantRelayed {
				t.Errorf("relayed = %v, want %v (%v)", lines[0]["relayed"], tt.wantRelayed, lines[0])
			}
			if got := serverOutcome(t, reader, tt.method); got != tt.wantOutcome {
				t.Errorf("outcome = %q, want %q", got, tt.wantOutcome)
			}
		})
	}
}

// serverOutcome is the outcome the server metrics counted for method's only call.
func serverOutcome(t *testing.T, reader sdkmetric.Reader, method string) string {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != "hypha.rpc.server.calls" || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				if v, _ := dp.Attributes.Value("method"); v.AsString() == method {
					outcome, _ := dp.Attributes.Value("outcome")
					return outcome.AsString()
				}
			}
		}
	}
	return ""
}

func TestRedactUnexpectedErrors(t *testing.T) {
	front, logs := serveRelay(t, "redact", rpc.ServerConfig{RedactUnexpectedErrors: true})
	ctx := context.Background()
	tests := []struct {
		method   string
		redacted bool
	}{
		{method: "invalid", redacted: false},
		{method: "too_large", redacted: true},
		{method: "panic", redacted: true},
		{method: "local", redacted: true},
		{method: "local_panic", redacted: true},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			err := front.Call(ctx, tt.method, nil, nil)
			var re *rpc.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RemoteError", err)
			}
			lines := logs.lines(t, tt.method)
			if len(lines) != 1 {
				t.Fatalf("logged %d lines for %s, want 1: %v", len(lines), tt.method, lines)
			}
			if !tt.redacted {
				if !errors.Is(err, errOrderInvalid) || re.Value != errOrderInvalid.Value || lines[0]["error_id"] != nil {
					t.Fatalf("expected error %#v (log %v), want it as sent", re, lines[0])
				}
				return
			}
			id, _ := lines[0]["error_id"].(string)
			if id == "" || re.ExcType != "Error" || re.Value != "internal error; reference "+id ||
				len(re.ExcArgs) != 1 || re.ExcArgs[0] != re.Value {
				t.Fatalf("got %#v, log %v; want an opaque Error naming the log's error_id", re, lines[0])
			}
			if strings.Contains(re.Value, "deep down") || strings.Contains(re.Value, "up here") {
				t.Fatalf("redacted error leaks %q", re.Value)
			}
		})
	}
}
