package httpentry_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// forwarder forwards GET /call/{method} to the backend's method of that name,
// as a gateway does: the method name is the HTTP client's choice.
type forwarder struct{ backend *rpc.Proxy }

func (f *forwarder) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /call/{method}", func(ctx context.Context, in struct {
		Method string `path:"method"`
	}) (any, error) {
		return rpc.Call[any](ctx, f.backend, in.Method, map[string]any{"id": "ann"})
	}, httpentry.Status(http.StatusNotFound, rpc.ErrMethodNotFound))
}

// Whatever names, bytes and Host headers HTTP clients send, /metrics stays
// 200 and its series stay few: every label is the registered value or _OTHER.
func TestMetricLabelsStayBounded(t *testing.T) {
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{
			"HTTP":    map[string]any{"ADDRESS": "127.0.0.1:0"},
			"METRICS": map[string]any{"ADDRESS": "127.0.0.1:0"},
		}),
		framework.Service("backend", func() backend { return backend{} }),
		framework.Service("gateway", func(d gatewayDeps) *forwarder { return &forwarder{backend: d.Backend} }),
	)
	base := "http://" + app.HTTPAddress()
	if r := do(t, "GET", base+"/call/user", "", nil); r.status != 200 {
		t.Fatalf("a known method: status %d %s", r.status, r.body)
	}
	paths := []string{"/call/%ff%fe", "/call/%c3%28", "/call/" + strings.Repeat("x", 200), "/call/_OTHER"}
	for i := range 200 {
		paths = append(paths, fmt.Sprintf("/call/random_%d", i))
	}
	for _, p := range paths {
		// A name that is not UTF-8 cannot be a routing key: 400, before
		// anything is sent; any other is a method the backend lacks.
		want := http.StatusNotFound
		if n, _ := url.PathUnescape(p); !utf8.ValidString(n) {
			want = http.StatusBadRequest
		}
		if r := do(t, "GET", base+p, "", nil); r.status != want {
			t.Fatalf("GET %s: status %d %s, want %d", p, r.status, r.body, want)
		}
	}
	for i := range 50 { // server.address would follow the Host header
		rawGet(t, app.HTTPAddress(), "/call/user", fmt.Sprintf("host-%d.example:%d", i, 1000+i))
	}
	r := do(t, "GET", "http://"+app.MetricsAddress()+"/metrics", "", nil)
	if r.status != 200 {
		t.Fatalf("/metrics: status %d %s", r.status, r.body)
	}
	body := string(r.body)
	for _, tc := range []struct{ metric, label string }{
		{"hypha_rpc_client_calls_total", "method"},
		{"hypha_rpc_client_calls_total", "target_service"},
		{"hypha_rpc_server_calls_total", "method"},
		{"http_server_request_duration_seconds_count", "server_address"},
		{"http_server_request_duration_seconds_count", "server_port"},
	} {
		values := labelValues(body, tc.metric, tc.label)
		if len(values) > 2 {
			t.Errorf("%s has %d values of %s, want at most the registered one and _OTHER: %v", tc.metric, len(values), tc.label, values)
		}
		for v := range values {
			if strings.HasPrefix(v, "random_") || strings.HasPrefix(v, "host-") {
				t.Errorf("%s{%s=%q}: a value the client chose became a label", tc.metric, tc.label, v)
			}
		}
	}
	if !strings.Contains(body, `method="user"`) || !strings.Contains(body, `method="_OTHER"`) {
		t.Errorf("/metrics lacks method=\"user\" or method=\"_OTHER\":\n%s", grep(body, "hypha_rpc_client_calls_total"))
	}
}

// rawGet sends a GET with the given Host header and reads the status line.
func rawGet(t *testing.T, address, path, host string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", address, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// labelValues are the distinct values of label in the samples of metric.
func labelValues(body, metric, label string) map[string]bool {
	re := regexp.MustCompile(`(?:^|[{,])` + label + `="((?:[^"\\]|\\.)*)"`)
	values := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		if m := re.FindStringSubmatch(line[len(metric):]); m != nil {
			values[m[1]] = true
		}
	}
	return values
}

func grep(body, prefix string) string {
	var out []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
