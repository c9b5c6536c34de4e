package framework_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// metricLine finds the sample of name whose labels include every one given.
func metricLine(metrics, name string, labels ...string) string {
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			return line
		}
	}
	return ""
}

func TestMetricsMove(t *testing.T) {
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"METRICS": map[string]any{"ADDRESS": "127.0.0.1:0"}}),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
	)
	addr := app.MetricsAddress()
	if addr == "" {
		t.Fatal("no metrics address")
	}
	before := scrape(t, addr)
	c := dial(t)
	ctx := context.Background()
	for range 3 {
		if _, err := rpc.Call[users.Score](ctx, c.Proxy(users.Name), "calculate_user_score",
			map[string]any{"user_id": 1, "base_score": 2, "multiplier": 3}); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = rpc.Call[float64](ctx, c.Proxy(calculator.Name), "divide", rpc.Args(1, 0))
	after := scrape(t, addr)

	checks := []struct{ name, want string }{
		{"hypha_rpc_server_calls_total", metricLine(after, "hypha_rpc_server_calls_total", `service="calculator"`, `method="multiply"`, `outcome="ok"`)},
		{"server expected error", metricLine(after, "hypha_rpc_server_calls_total", `method="divide"`, `outcome="expected_error"`)},
		{"client calls", metricLine(after, "hypha_rpc_client_calls_total", `service="user_service"`, `target_service="calculator"`, `outcome="ok"`)},
		{"server duration", metricLine(after, "hypha_rpc_server_duration_seconds_count", `service="user_service"`)},
		{"client duration", metricLine(after, "hypha_rpc_client_duration_seconds_count", `service="user_service"`)},
		{"workers", metricLine(after, "hypha_workers_busy", `service="calculator"`)},
	}
	for _, c := range checks {
		if c.want == "" {
			t.Errorf("%s: no sample in\n%s", c.name, after)
		}
	}
	if got := metricLine(after, "hypha_rpc_server_calls_total", `service="calculator"`, `method="multiply"`, `outcome="ok"`); !strings.HasSuffix(got, " 3") {
		t.Errorf("multiply calls: %q, want 3", got)
	}
	if metricLine(before, "hypha_rpc_server_calls_total", `method="multiply"`) != "" {
		t.Errorf("calls counted before any call")
	}

	// A dropped connection is counted once it is restored.
	testbroker.CloseConnections(t)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(scrape(t, addr), "hypha_broker_reconnects_total") || metricValue(scrape(t, addr), "hypha_broker_reconnects_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect counted:\n%s", scrape(t, addr))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue is the value of the first sample of an unlabelled-or-labelled metric.
func metricValue(metrics, name string) float64 {
	for _, line := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// logger logs with the handler's context.
type logger struct{ log *slog.Logger }

func (l *logger) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "hello", func(ctx context.Context, _ struct{}) (string, error) {
		l.log.InfoContext(ctx, "saying hello")
		return "hello", nil
	})
}

func TestWorkerLogsCarryTraceAndCallIDs(t *testing.T) {
	var buf syncBuffer
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t),
			"TRACING": map[string]any{"EXPORTER": "console"}}),
		framework.Logger(slog.New(slog.NewTextHandler(&buf, nil))),
		framework.Service("logger", func(l *slog.Logger) *logger { return &logger{log: l} }),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer app.Stop(context.Background())
	if err := dial(t).Proxy("logger").Call(context.Background(), "hello", nil, nil); err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.Contains(l, "saying hello") {
			line = l
		}
	}
	for _, want := range []string{"service=logger", "trace_id=", "span_id=", "call_id_stack=", "logger.hello."} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestMetricsForOperations(t *testing.T) {
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"METRICS": map[string]any{"ADDRESS": "127.0.0.1:0"}}),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
	)
	addr := app.MetricsAddress()
	before := scrape(t, addr)
	if !strings.Contains(before, "\nhypha_broker_reconnects_total 0\n") {
		t.Errorf("no hypha_broker_reconnects_total 0 at start in\n%s", before)
	}
	if !strings.Contains(before, "\nhypha_broker_connected 1\n") {
		t.Errorf("no hypha_broker_connected 1 in\n%s", before)
	}
	if _, err := rpc.Call[users.Score](context.Background(), dial(t).Proxy(users.Name), "calculate_user_score",
		map[string]any{"user_id": 1, "base_score": 2, "multiplier": 3}); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, addr)
	for _, want := range []struct{ name, line string }{
		{"server bucket", metricLine(after, "hypha_rpc_server_duration_seconds_bucket", `le="0.001"`)},
		{"client bucket", metricLine(after, "hypha_rpc_client_duration_seconds_bucket", `le="30"`)},
		{"in flight", metricLine(after, "hypha_rpc_client_in_flight", `service="user_service"`)},
	} {
		if want.line == "" {
			t.Errorf("%s: no sample in\n%s", want.name, after)
		}
	}
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes "} {
		if !strings.Contains(after, want) {
			t.Errorf("no %q in\n%s", strings.TrimSpace(want), after)
		}
	}
	if strings.Contains(after, "otel_scope_") {
		t.Errorf("series carry otel_scope_ labels:\n%s", after)
	}

	out, err := testbroker.Rabbitmqctl("-q", "--no-table-headers", "list_connections", "-p", testbroker.VHost(t), "client_properties")
	if err != nil {
		t.Fatal(err, out)
	}
	host, _ := os.Hostname()
	if want := fmt.Sprintf("calculator,user_service@%s:%d", host, os.Getpid()); !strings.Contains(out, want) {
		t.Errorf("no connection named %q in\n%s", want, out)
	}
}

// failingHandler handles dl_src's "boom" events by failing.
type failingHandler struct{}

func (failingHandler) Register(r *entrypoint.Registry) {
	events.Handle(r, "on_boom", "dl_src", "boom", func(context.Context, string) error { return errors.New("boom") })
}

// TestDeadLettersCounted: each dead-lettered event is counted, by how it
// went to its dead-letter queue.
func TestDeadLettersCounted(t *testing.T) {
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"METRICS": map[string]any{"ADDRESS": "127.0.0.1:0"}}),
		framework.Service("dl_counter", func() failingHandler { return failingHandler{} }),
	)
	d, err := hyphatest.Dispatcher(t, context.Background(), testbroker.URI(t), events.DispatcherConfig{Source: "dl_src"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Dispatch(context.Background(), "boom", "x"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		line := metricLine(scrape(t, app.MetricsAddress()), "hypha_events_dead_lettered_total",
			`service="dl_counter"`, `handler="on_boom"`, `event="dl_src.boom"`, `how="copy"`)
		if strings.HasSuffix(line, " 1") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter counted; metric line %q", line)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
