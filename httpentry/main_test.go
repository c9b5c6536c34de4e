package httpentry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/fx"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

// ErrNoSuchUser is the backend's: relayed through the gateway, it is a 404.
var ErrNoSuchUser = rpc.NewError("NoSuchUser", "no such user")

// backend is the RPC service the gateway calls.
type backend struct{}

func (backend) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "user", func(_ context.Context, in struct {
		ID string `json:"id"`
	}) (string, error) {
		if in.ID != "ann" {
			return "", ErrNoSuchUser
		}
		return "Ann", nil
	}, rpc.Expected(ErrNoSuchUser))
	rpc.Handle(r, "whoami", func(ctx context.Context, _ struct{}) (map[string]any, error) {
		return map[string]any{"user_id": contextdata.UserID(ctx),
			"trace_id": trace.SpanContextFromContext(ctx).TraceID().String()}, nil
	})
	rpc.Handle(r, "panic", func(context.Context, struct{}) (string, error) { panic("backend on fire") })
}

type gatewayDeps struct {
	fx.In
	Backend *rpc.Proxy `name:"backend"`
}

// gateway exposes the backend over HTTP.
type gateway struct{ backend *rpc.Proxy }

type userIn struct {
	ID    string   `path:"id"`
	Upper bool     `query:"upper"`
	Tags  []string `query:"tag"`
}

type userOut struct {
	Name string   `json:"name"`
	Tags []string `json:"tags,omitempty"`
}

type sumIn struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
	N int     `query:"n"`
}

func (g *gateway) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /users/{id}", func(ctx context.Context, in userIn) (userOut, error) {
		name, err := rpc.Call[string](ctx, g.backend, "user", map[string]any{"id": in.ID})
		if in.Upper {
			name = strings.ToUpper(name)
		}
		return userOut{Name: name, Tags: in.Tags}, err
	}, httpentry.Status(http.StatusNotFound, ErrNoSuchUser))
	httpentry.Handle(r, "POST /sum", func(_ context.Context, in sumIn) (float64, error) {
		return (in.A + in.B) * float64(max(in.N, 1)), nil
	})
	whoami := func(ctx context.Context, _ struct{}) (map[string]any, error) {
		out, err := rpc.Call[map[string]any](ctx, g.backend, "whoami", nil)
		if out != nil {
			out["here"] = trace.SpanContextFromContext(ctx).TraceID().String()
		}
		return out, err
	}
	httpentry.Handle(r, "GET /whoami", whoami, httpentry.ContextHeaders())
	httpentry.Handle(r, "GET /whoami-untrusted", whoami)
	httpentry.Handle(r, "GET /fail", func(context.Context, struct{}) (string, error) {
		return "", errors.New("the disk holding secret.txt is on fire")
	})
	httpentry.Handle(r, "GET /downstream-panic", func(ctx context.Context, _ struct{}) (string, error) {
		return rpc.Call[string](ctx, g.backend, "panic", nil)
	})
	httpentry.HandleHTTP(r, "GET /plain/{name}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello "+r.PathValue("name"))
	}))
	httpentry.HandleHTTP(r, "GET /plain-panic", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("plain on fire")
	}))
	httpentry.HandleHTTP(r, "GET /abort", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic(http.ErrAbortHandler)
	}))
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is one app serving the gateway and the backend.
type fixture struct {
	base string
	logs *syncBuffer
}

// startGateway starts the gateway and its backend with HTTP.ADDRESS on a
// free loopback port (and HEALTH.ADDRESS the same).
func startGateway(t *testing.T) *fixture {
	t.Helper()
	logs := &syncBuffer{}
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{
			"HTTP":    map[string]any{"ADDRESS": "127.0.0.1:0"},
			"HEALTH":  map[string]any{"ADDRESS": "127.0.0.1:0"},
			"TRACING": map[string]any{"EXPORTER": "console"},
		}),
		framework.Logger(slog.New(slog.NewTextHandler(logs, nil))),
		framework.Service("backend", func() backend { return backend{} }),
		framework.Service("gateway", func(d gatewayDeps) *gateway { return &gateway{backend: d.Backend} }),
	)
	return &fixture{base: "http://" + app.HTTPAddress(), logs: logs}
}

// response is an HTTP response, read whole.
type response struct {
	status      int
	contentType string
	body        []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("status %d, body %q is not a JSON object: %v", r.status, r.body, err)
	}
	return m
}

// errorOf is the "error" object of an error response.
func (r response) errorOf(t *testing.T) map[string]any {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("status %d, body %s has no error object", r.status, r.body)
	}
	return e
}

// do sends a request with Go's client and reads the response.
func do(t *testing.T, method, url, body string, header map[string]string) response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: b}
}
