package jaegertest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/jaegertest"
)

// randomHex returns n random bytes in hex, the first byte never zero (Jaeger
// prints trace IDs without leading zeros).
func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[0] |= 0x10
	return hex.EncodeToString(b)
}

// otlpSpan is one span in the OTLP/HTTP JSON encoding.
func otlpSpan(traceID, spanID, parentID, name string, kind int, start time.Time, attrs ...map[string]any) map[string]any {
	s := map[string]any{
		"traceId":           traceID,
		"spanId":            spanID,
		"name":              name,
		"kind":              kind,
		"startTimeUnixNano": strconv.FormatInt(start.UnixNano(), 10),
		"endTimeUnixNano":   strconv.FormatInt(start.Add(5*time.Millisecond).UnixNano(), 10),
	}
	if parentID != "" {
		s["parentSpanId"] = parentID
	}
	if attrs != nil {
		s["attributes"] = attrs
	}
	return s
}

// TestRoundTrip sends two spans (a server span and its client child) to
// Jaeger over OTLP/HTTP JSON, by hand so that the root module needs no
// OpenTelemetry SDK, and reads them back through Traces.
func TestRoundTrip(t *testing.T) {
	j := jaegertest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	service := "jaegertest-" + randomHex(t, 4)
	traceID := randomHex(t, 16)
	parentID := randomHex(t, 8)
	childID := randomHex(t, 8)
	now := time.Now()
	body := map[string]any{
		"resourceSpans": []any{map[string]any{
			"resource": map[string]any{"attributes": []any{
				map[string]any{"key": "service.name", "value": map[string]any{"stringValue": service}},
			}},
			"scopeSpans": []any{map[string]any{
				"scope": map[string]any{"name": "jaegertest"},
				"spans": []any{
					otlpSpan(traceID, parentID, "", "parent-op", 2, now), // SPAN_KIND_SERVER
					otlpSpan(traceID, childID, parentID, "child-op", 3, now.Add(time.Millisecond), // SPAN_KIND_CLIENT
						map[string]any{"key": "hypha.test", "value": map[string]any{"stringValue": "yes"}},
						map[string]any{"key": "hypha.retries", "value": map[string]any{"intValue": "3"}},
						map[string]any{"key": "hypha.ok", "value": map[string]any{"boolValue": true}},
					),
				},
			}},
		}},
	}
	payload, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.OTLPHTTPEndpoint()+"/v1/traces", bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/traces: %v", err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/traces: %s: %s", resp.Status, respBody)
	}

	// Both spans arrive in one request, but wait for both anyway.
	traces, err := j.WaitFor(ctx, service, func(ts []jaegertest.Trace) bool {
		return len(ts) == 1 && len(ts[0].Spans) == 2
	})
	if err != nil {
		t.Fatalf("WaitFor: %v; traces: %v", err, traces)
	}
	tr := traces[0]
	if tr.TraceID != traceID {
		t.Errorf("TraceID = %q, want %q", tr.TraceID, traceID)
	}
	parent, ok := tr.SpanNamed(service, "parent-op")
	if !ok {
		t.Fatalf("no span parent-op in\n%v", tr)
	}
	child, ok := tr.SpanNamed(service, "child-op")
	if !ok {
		t.Fatalf("no span child-op in\n%v", tr)
	}
	if _, ok := tr.SpanNamed("other-service", "child-op"); ok {
		t.Errorf("SpanNamed matched a span of another service")
	}
	if parent.SpanID != parentID || child.SpanID != childID {
		t.Errorf("span IDs = %q, %q; want %q, %q", parent.SpanID, child.SpanID, parentID, childID)
	}
	if got := parent.ParentID(); got != "" {
		t.Errorf("parent.ParentID() = %q, want none", got)
	}
	if got := child.ParentID(); got != parentID {
		t.Errorf("child.ParentID() = %q, want %q", got, parentID)
	}
	if p, ok := tr.Parent(child); !ok || p.OperationName != "parent-op" {
		t.Errorf("Parent(child) = %v, %v; want parent-op", p.OperationName, ok)
	}
	if roots := tr.Roots(); len(roots) != 1 || roots[0].SpanID != parentID {
		t.Errorf("Roots() = %v, want the parent span", roots)
	}
	if got := tr.ServiceOf(child); got != service {
		t.Errorf("ServiceOf(child) = %q, want %q", got, service)
	}
	for key, want := range map[string]any{
		"hypha.test":    "yes",
		"hypha.retries": int64(3),
		"hypha.ok":      true,
		"span.kind":     "client",
	} {
		if got, ok := child.Tag(key); !ok || got != want {
			t.Errorf("child.Tag(%q) = %#v, %v; want %#v", key, got, ok, want)
		}
	}
	if got, ok := parent.Tag("span.kind"); !ok || got != "server" {
		t.Errorf("parent.Tag(span.kind) = %#v, %v; want server", got, ok)
	}
	if _, ok := child.Tag("no.such.tag"); ok {
		t.Errorf("Tag(no.such.tag) found")
	}

	// WaitForTraces counts traces; a service Jaeger never saw has none.
	if ts, err := j.WaitForTraces(ctx, service, 1); err != nil || len(ts) != 1 {
		t.Errorf("WaitForTraces(1) = %d traces, %v", len(ts), err)
	}
	if ts, err := j.Traces(ctx, "jaegertest-unknown-service"); err != nil || len(ts) != 0 {
		t.Errorf("Traces(unknown service) = %v, %v; want none, no error", ts, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if _, err := j.WaitForTraces(short, service, 2); err == nil {
		t.Errorf("WaitForTraces(2) succeeded with one trace")
	}
}

// TestEndpoints checks the fixed addresses without starting Jaeger.
func TestEndpoints(t *testing.T) {
	var j jaegertest.Jaeger
	for got, want := range map[string]string{
		j.OTLPHTTPEndpoint(): "http://127.0.0.1:4318",
		j.OTLPGRPCEndpoint(): "http://127.0.0.1:4317",
		j.OTLPGRPCAddr():     "127.0.0.1:4317",
		j.QueryURL():         "http://127.0.0.1:16686",
	} {
		if got != want {
			t.Errorf("endpoint %q, want %q", got, want)
		}
	}
}

// TestTagDecoding checks that tag values get the Go type of their Jaeger type.
func TestTagDecoding(t *testing.T) {
	const js = `{"traceID":"1","spans":[{"spanID":"a","operationName":"op","processID":"p1","tags":[
		{"key":"s","type":"string","value":"x"},
		{"key":"i","type":"int64","value":9007199254740993},
		{"key":"f","type":"float64","value":1.5},
		{"key":"b","type":"bool","value":true},
		{"key":"bin","type":"binary","value":"AAE="}]}],
		"processes":{"p1":{"serviceName":"svc","tags":[]}}}`
	var tr jaegertest.Trace
	if err := json.Unmarshal([]byte(js), &tr); err != nil {
		t.Fatal(err)
	}
	s, ok := tr.SpanNamed("svc", "op")
	if !ok {
		t.Fatal("SpanNamed(svc, op) not found")
	}
	for key, want := range map[string]any{"s": "x", "i": int64(9007199254740993), "f": 1.5, "b": true} {
		if got, _ := s.Tag(key); got != want {
			t.Errorf("Tag(%q) = %#v, want %#v", key, got, want)
		}
	}
	if got, _ := s.Tag("bin"); !bytes.Equal(got.([]byte), []byte{0, 1}) {
		t.Errorf("Tag(bin) = %#v, want [0 1]", got)
	}
}
