package framework_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/introspect"
)

// kindOnce is a kind of entrypoint defined here, outside the framework: a
// function that runs once, in a worker, when its service starts.
const kindOnce entrypoint.Kind = "once"

// onceEntry is an entrypoint of kindOnce, which handleOnce registers.
type onceEntry struct {
	name string
	fn   func(ctx context.Context) error
}

func (e *onceEntry) EntrypointName() string { return e.name }

func (e *onceEntry) Describe() entrypoint.Description {
	return entrypoint.Description{Kind: kindOnce, Name: e.name, Doc: "runs once on start",
		Detail: map[string]any{"when": "start"}}
}

func handleOnce(r *entrypoint.Registry, name string, fn func(ctx context.Context) error) {
	r.Add(&onceEntry{name: name, fn: fn})
}

// journal records what happens, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
	ran   chan struct{} // closed once an entrypoint ran
}

func (j *journal) add(line string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, line)
	if strings.HasPrefix(line, "ran ") {
		select {
		case <-j.ran:
		default:
			close(j.ran)
		}
	}
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

// oncePlugin serves kindOnce; its servers are unready while unready holds
// an error.
type oncePlugin struct {
	j       *journal
	unready *atomic.Pointer[error]
}

func (p oncePlugin) Kind() entrypoint.Kind { return kindOnce }

func (p oncePlugin) Serve(s *entrypoint.Service) (entrypoint.Server, error) {
	entries := entrypoint.Of[*onceEntry](s.Registry)
	if len(entries) == 0 {
		return nil, nil
	}
	p.j.add("serve " + s.Name)
	return &onceServer{j: p.j, s: s, entries: entries, unready: p.unready}, nil
}

type onceServer struct {
	j       *journal
	s       *entrypoint.Service
	entries []*onceEntry
	unready *atomic.Pointer[error]
}

func (o *onceServer) Ready() error {
	if o.unready == nil {
		return nil
	}
	if err := o.unready.Load(); err != nil {
		return *err
	}
	return nil
}

func (o *onceServer) Start(ctx context.Context) error {
	o.j.add("start " + o.s.Name)
	for _, e := range o.entries {
		info := &entrypoint.Call{Kind: kindOnce, Service: o.s.Name, Name: e.name}
		run := entrypoint.Intercept(o.s.Interceptors, info, e.fn)
		if err := o.s.Pool.Go(context.WithoutCancel(ctx), e.name, func(ctx context.Context) {
			if err := run(ctx); err != nil {
				o.s.Logger.Error("once failed", "error", err)
			}
		}); err != nil {
			return err
		}
	}
	return nil
}

func (o *onceServer) Drain(context.Context) error { o.j.add("drain " + o.s.Name); return nil }
func (o *onceServer) Close() error                { o.j.add("close " + o.s.Name); return nil }

type warmer struct{ j *journal }

func (w *warmer) Register(r *entrypoint.Registry) {
	handleOnce(r, "warm_up", func(context.Context) error {
		w.j.add("ran warm_up")
		return nil
	})
}

// A kind defined outside the framework is served like a built-in one: its
// entrypoints are registered by the service, started, run in the service's
// pool through the app's interceptors, described by introspection, then
// drained and closed.
func TestPluginKind(t *testing.T) {
	j := &journal{ran: make(chan struct{})}
	intercept := func(ctx context.Context, info *entrypoint.Call, next entrypoint.Next) error {
		if info.Kind == kindOnce { // the introspection call is intercepted too
			j.add("intercept " + string(info.Kind) + " " + info.Service + " " + info.Name)
		}
		return next(ctx)
	}
	app := hyphatest.Run(t, testbroker.URI(t), framework.Plugins(oncePlugin{j: j}), framework.Interceptors(intercept),
		framework.Service("warmer", func() *warmer { return &warmer{j: j} }))
	select {
	case <-j.ran:
	case <-time.After(10 * time.Second):
		t.Fatalf("the entrypoint did not run: %q", j.all())
	}

	d, err := introspect.Fetch(context.Background(), dial(t).Proxy("warmer"))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(d.Entrypoints, func(e entrypoint.Description) bool { return e.Name == "warm_up" })
	if i < 0 {
		t.Fatalf("introspection described %+v, without warm_up", d.Entrypoints)
	}
	if e := d.Entrypoints[i]; e.Kind != kindOnce || e.Doc != "runs once on start" || e.Detail["when"] != "start" {
		t.Errorf("introspection described warm_up as %+v", e)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"serve warmer", "start warmer", "intercept once warmer warm_up", "ran warm_up",
		"drain warmer", "close warmer"}
	if got := j.all(); !slices.Equal(got, want) {
		t.Errorf("the kind saw\n%q\nwant\n%q", got, want)
	}
}

// An entrypoint of a kind no plugin serves stops New, naming it.
func TestPluginKindMissing(t *testing.T) {
	j := &journal{ran: make(chan struct{})}
	_, err := framework.New(framework.Logger(quiet),
		framework.Service("warmer", func() *warmer { return &warmer{j: j} }))
	if err == nil || !strings.Contains(err.Error(), `"warm_up" (kind "once")`) ||
		!strings.Contains(err.Error(), "framework.Plugins") {
		t.Fatalf("New returned %v, want an error naming warm_up and its kind", err)
	}
}

// A kind's server that says it is not ready makes the app unready (/readyz).
func TestPluginKindReadiness(t *testing.T) {
	j := &journal{ran: make(chan struct{})}
	unready := new(atomic.Pointer[error])
	app := hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(map[string]any{"HEALTH.ADDRESS": "127.0.0.1:0"}),
		framework.Plugins(oncePlugin{j: j, unready: unready}),
		framework.Service("warmer", func() *warmer { return &warmer{j: j} }))
	eventually(t, 10*time.Second, "/readyz not 200 with the kind ready", func() bool {
		code, _ := get(t, app.HealthAddress(), "/readyz")
		return code == http.StatusOK
	})
	cold := errors.New("still warming up")
	unready.Store(&cold)
	if code, body := get(t, app.HealthAddress(), "/readyz"); code != http.StatusServiceUnavailable ||
		!strings.Contains(body, `service "warmer": still warming up`) {
		t.Fatalf("/readyz = %d %q with the kind unready, want 503 naming the service and why", code, body)
	}
	unready.Store(nil)
	if code, _ := get(t, app.HealthAddress(), "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d with the kind ready again", code)
	}
}
