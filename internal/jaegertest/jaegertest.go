// Package jaegertest runs a real Jaeger (v2, all-in-one, in-memory storage)
// for end-to-end tests and reads back the traces it received.
//
//	j := jaegertest.Start(t)
//	// point the code under test at j.OTLPHTTPEndpoint() or j.OTLPGRPCEndpoint()
//	traces, err := j.WaitForTraces(ctx, "my-service", 1)
//
// Start builds bin/jaeger from source with `scripts/jaeger.sh build` (the
// tools/jaeger module pins the version; `make jaeger` does the same ahead of
// time, which is much faster than a first build inside a test) and starts it
// as a child process of the test, with its own temp directory and
// tools/jaeger/config.yaml, which binds every listener to 127.0.0.1. The
// process is killed in t.Cleanup.
//
// When the binary cannot be built (for example without access to the Go
// module proxy and with a cold module cache) the test is skipped, except
// under CI=true, where it fails.
//
// The ports are fixed: OTLP gRPC 4317, OTLP HTTP 4318, query API 16686,
// query gRPC 16685, health check 13133. So only one Jaeger can run at a time:
// Start holds an exclusive lock file (os.TempDir()/hypha-jaegertest.lock)
// for as long as its Jaeger runs, which serializes test packages that go
// test runs in parallel processes, but tests in one package that call Start
// must not run in parallel with each other (no t.Parallel), or the second
// waits for the first and may time out. A Jaeger started by hand
// (scripts/jaeger.sh start) holds the ports too: Start then fails and says
// so.
package jaegertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixed addresses, as configured in tools/jaeger/config.yaml.
const (
	otlpGRPCAddr  = "127.0.0.1:4317"
	otlpHTTPAddr  = "127.0.0.1:4318"
	queryAddr     = "127.0.0.1:16686"
	queryGRPCAddr = "127.0.0.1:16685"
	healthAddr    = "127.0.0.1:13133"
)

// Bounds on the slow steps of Start.
const (
	lockTimeout  = 5 * time.Minute  // waiting for another test process's Jaeger
	buildTimeout = 15 * time.Minute // a cold source build takes minutes
	readyTimeout = 60 * time.Second // start until the query API and OTLP answer
)

// Jaeger is a running Jaeger started by [Start].
type Jaeger struct {
	client *http.Client
	log    string // path of the process's combined stdout and stderr
}

// OTLPHTTPEndpoint is the base URL of the OTLP/HTTP receiver,
// "http://127.0.0.1:4318" (traces go to /v1/traces). Use it as
// OTEL_EXPORTER_OTLP_ENDPOINT with protocol http/protobuf or http/json, or
// with otlptracehttp.WithEndpointURL.
func (j *Jaeger) OTLPHTTPEndpoint() string { return "http://" + otlpHTTPAddr }

// OTLPGRPCEndpoint is the URL of the OTLP/gRPC receiver,
// "http://127.0.0.1:4317" (plaintext, hence http). Use it as
// OTEL_EXPORTER_OTLP_ENDPOINT with protocol grpc, or with
// otlptracegrpc.WithEndpointURL; [Jaeger.OTLPGRPCAddr] gives host:port.
func (j *Jaeger) OTLPGRPCEndpoint() string { return "http://" + otlpGRPCAddr }

// OTLPGRPCAddr is the host:port of the OTLP/gRPC receiver, "127.0.0.1:4317",
// for otlptracegrpc.WithEndpoint together with WithInsecure.
func (j *Jaeger) OTLPGRPCAddr() string { return otlpGRPCAddr }

// QueryURL is the base URL of the query API, "http://127.0.0.1:16686".
func (j *Jaeger) QueryURL() string { return "http://" + queryAddr }

// LogFile is the path of the Jaeger process's log (stdout and stderr).
func (j *Jaeger) LogFile() string { return j.log }

// Start builds Jaeger if needed, starts it as a child process of the test
// and waits until it accepts spans and answers queries. The process is
// killed, and the lock on the fixed ports released, when t's cleanup runs.
// See the package documentation for what Start does when Jaeger cannot be
// built or its ports are taken.
func Start(t testing.TB) *Jaeger {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("jaegertest: %v", err)
	}

	unlock, err := lockPorts(lockTimeout)
	if err != nil {
		t.Fatalf("jaegertest: %v", err)
	}
	t.Cleanup(unlock)

	bin, err := build(root)
	if err != nil {
		if ciMode() {
			t.Fatalf("jaegertest: cannot build Jaeger (CI=true, so this fails rather than skips): %v", err)
		}
		t.Skipf("jaegertest: skipped, cannot build Jaeger (with CI=true this fails): %v", err)
	}

	for _, addr := range []string{otlpGRPCAddr, otlpHTTPAddr, queryAddr, queryGRPCAddr, healthAddr} {
		if err := portFree(addr); err != nil {
			t.Fatalf("jaegertest: %s is in use (%v); is a Jaeger running that "+
				"scripts/jaeger.sh start started? stop it with scripts/jaeger.sh stop", addr, err)
		}
	}

	dir := t.TempDir()
	logPath := filepath.Join(dir, "jaeger.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("jaegertest: %v", err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(root, "tools", "jaeger", "config.yaml"))
	cmd.Dir = dir
	cmd.Stdin = nil
	cmd.Stdout = logFile // an *os.File: no copying goroutine
	cmd.Stderr = logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("jaegertest: start %s: %v", bin, err)
	}
	logFile.Close() // the child has its own copy
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("jaegertest: Jaeger log (%s):\n%s", logPath, tail(logPath, 40))
		}
	})

	j := &Jaeger{client: &http.Client{Timeout: 10 * time.Second}, log: logPath}
	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-exited:
			t.Fatalf("jaegertest: Jaeger exited during startup (%v); log:\n%s", waitErr, tail(logPath, 40))
		default:
		}
		if j.ready() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("jaegertest: Jaeger did not become ready within %v; log:\n%s", readyTimeout, tail(logPath, 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ready reports whether the query API answers and both OTLP receivers
// accept connections. The collector starts extensions (the query API)
// before the receivers, so the query API alone is not enough.
func (j *Jaeger) ready() bool {
	resp, err := j.client.Get(j.QueryURL() + "/api/services")
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	for _, addr := range []string{otlpHTTPAddr, otlpGRPCAddr} {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	return true
}

// Traces returns the traces (at most 100, of the last hour) that contain a
// span of service, as the query API's GET /api/traces returns them. It
// returns no traces and no error when Jaeger knows no such service yet.
func (j *Jaeger) Traces(ctx context.Context, service string) ([]Trace, error) {
	q := url.Values{
		"service":  {service},
		"limit":    {"100"},
		"lookback": {"1h"},
	}
	u := j.QueryURL() + "/api/traces?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaegertest: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("jaegertest: GET %s: %w", u, err)
	}
	var r struct {
		Data   []Trace `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaegertest: GET %s: %s: %s", u, resp.Status, truncate(body, 300))
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("jaegertest: GET %s: decoding %q: %w", u, truncate(body, 300), err)
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("jaegertest: GET %s: %s", u, truncate(body, 300))
	}
	return r.Data, nil
}

// WaitForTraces polls [Jaeger.Traces] until at least n traces of service
// exist and returns them. It gives up when ctx is done, or after 30s when
// ctx has no deadline, returning the traces found so far and an error.
//
// A trace is counted as soon as Jaeger has one of its spans; when a test
// needs spans that other processes export later, use [Jaeger.WaitFor].
func (j *Jaeger) WaitForTraces(ctx context.Context, service string, n int) ([]Trace, error) {
	traces, err := j.WaitFor(ctx, service, func(ts []Trace) bool { return len(ts) >= n })
	if err != nil {
		return traces, fmt.Errorf("jaegertest: want %d traces of service %q, have %d: %w", n, service, len(traces), err)
	}
	return traces, nil
}

// WaitFor polls [Jaeger.Traces] every 100ms until ok returns true for the
// traces of service and returns them. It gives up when ctx is done, or
// after 30s when ctx has no deadline, returning the last traces it got and
// an error.
func (j *Jaeger) WaitFor(ctx context.Context, service string, ok func([]Trace) bool) ([]Trace, error) {
	if _, has := ctx.Deadline(); !has {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	var last []Trace
	var lastErr error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ts, err := j.Traces(ctx, service)
		if err == nil {
			last, lastErr = ts, nil
			if ok(ts) {
				return ts, nil
			}
		} else if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("%w (last query error: %v)", ctx.Err(), lastErr)
			}
			return last, ctx.Err()
		case <-tick.C:
		}
	}
}

// Trace is one trace as the query API returns it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
	Warnings  []string           `json:"warnings"`
}

// Span is one span of a [Trace]. Jaeger maps OTLP onto its own model: the
// OTLP span name is OperationName, the parent becomes a CHILD_OF reference,
// links become FOLLOWS_FROM references, attributes become Tags, and the
// span kind and status become the tags "span.kind" ("server", "client",
// "producer", "consumer", "internal"), "otel.status_code" and "error".
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	Flags         int         `json:"flags"`
	StartTime     int64       `json:"startTime"` // microseconds since the Unix epoch
	Duration      int64       `json:"duration"`  // microseconds
	Tags          []KeyValue  `json:"tags"`
	Logs          []Log       `json:"logs"`
	ProcessID     string      `json:"processID"`
	Process       *Process    `json:"process,omitempty"` // usually nil: see Trace.Processes
	Warnings      []string    `json:"warnings"`
}

// Reference links a span to another: RefType is "CHILD_OF" (the parent) or
// "FOLLOWS_FROM" (an OTLP link).
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Process is the emitting service of spans: the OTLP resource.
type Process struct {
	ServiceName string     `json:"serviceName"`
	Tags        []KeyValue `json:"tags"`
}

// Log is a span event.
type Log struct {
	Timestamp int64      `json:"timestamp"` // microseconds since the Unix epoch
	Fields    []KeyValue `json:"fields"`
}

// KeyValue is a tag. Value holds a string, bool, int64, float64 or []byte
// according to Type ("string", "bool", "int64", "float64", "binary").
type KeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// UnmarshalJSON decodes a tag and converts Value according to Type, so that
// an int64 tag holds an int64 rather than a float64.
func (kv *KeyValue) UnmarshalJSON(b []byte) error {
	var raw struct {
		Key   string          `json:"key"`
		Type  string          `json:"type"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	kv.Key, kv.Type = raw.Key, raw.Type
	var err error
	switch strings.ToLower(raw.Type) {
	case "int64":
		var n json.Number
		if err = json.Unmarshal(raw.Value, &n); err == nil {
			kv.Value, err = strconv.ParseInt(n.String(), 10, 64)
		}
	case "float64":
		var f float64
		err = json.Unmarshal(raw.Value, &f)
		kv.Value = f
	case "bool":
		var v bool
		err = json.Unmarshal(raw.Value, &v)
		kv.Value = v
	case "binary":
		var v []byte // base64 in JSON
		err = json.Unmarshal(raw.Value, &v)
		kv.Value = v
	case "string":
		var s string
		err = json.Unmarshal(raw.Value, &s)
		kv.Value = s
	default:
		var v any
		err = json.Unmarshal(raw.Value, &v)
		kv.Value = v
	}
	if err != nil {
		return fmt.Errorf("jaegertest: tag %q of type %q: %w", raw.Key, raw.Type, err)
	}
	return nil
}

// Tag returns the value of the span's tag key (see [KeyValue] for its Go
// type) and whether the span has it.
func (s Span) Tag(key string) (any, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// ParentID returns the span ID of the span's parent (its CHILD_OF
// reference), or "" for a root span.
func (s Span) ParentID() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// ServiceOf returns the service name of the process that emitted s.
func (tr Trace) ServiceOf(s Span) string {
	if s.Process != nil {
		return s.Process.ServiceName
	}
	return tr.Processes[s.ProcessID].ServiceName
}

// SpanNamed returns the first span of service named op (its operation
// name), and whether there is one. An empty service matches every service.
func (tr Trace) SpanNamed(service, op string) (Span, bool) {
	for _, s := range tr.Spans {
		if s.OperationName == op && (service == "" || tr.ServiceOf(s) == service) {
			return s, true
		}
	}
	return Span{}, false
}

// SpanByID returns the span with the given span ID, and whether there is one.
func (tr Trace) SpanByID(spanID string) (Span, bool) {
	for _, s := range tr.Spans {
		if s.SpanID == spanID {
			return s, true
		}
	}
	return Span{}, false
}

// Parent returns the parent span of s within the trace, and whether it is
// there (false for a root span or a parent Jaeger has not received).
func (tr Trace) Parent(s Span) (Span, bool) {
	id := s.ParentID()
	if id == "" {
		return Span{}, false
	}
	return tr.SpanByID(id)
}

// Roots returns the spans without a parent.
func (tr Trace) Roots() []Span {
	var roots []Span
	for _, s := range tr.Spans {
		if s.ParentID() == "" {
			roots = append(roots, s)
		}
	}
	return roots
}

// String lists the trace's spans, one a line, for test failure messages.
func (tr Trace) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "trace %s (%d spans)", tr.TraceID, len(tr.Spans))
	for _, s := range tr.Spans {
		fmt.Fprintf(&b, "\n  %s %s/%s parent=%q", s.SpanID, tr.ServiceOf(s), s.OperationName, s.ParentID())
		if k, ok := s.Tag("span.kind"); ok {
			fmt.Fprintf(&b, " kind=%v", k)
		}
	}
	return b.String()
}

// buildOnce builds bin/jaeger at most once per test process.
var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// build runs `scripts/jaeger.sh build` and returns the binary's path.
func build(root string) (string, error) {
	buildOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "jaeger.sh"), "build")
		cmd.Dir = root
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("scripts/jaeger.sh build: %v\n%s", err, lastLines(out.String(), 30))
			return
		}
		buildBin = filepath.Join(root, "bin", "jaeger")
		if _, err := os.Stat(buildBin); err != nil {
			buildErr = err
		}
	})
	return buildBin, buildErr
}

// repoRoot finds the repository root (the directory with
// tools/jaeger/config.yaml) from the working directory, which go test sets
// to the package's directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "tools", "jaeger", "config.yaml")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no tools/jaeger/config.yaml in %s or above", dir)
		}
		d = parent
	}
}

// portFree reports an error when addr cannot be listened on.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		var opErr *net.OpError
		if errors.As(err, &opErr) {
			return opErr.Err
		}
		return err
	}
	return l.Close()
}

// ciMode reports whether CI is set to a true value; a Jaeger that cannot be
// built then fails the test instead of skipping it.
func ciMode() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	return lastLines(string(b), n)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
