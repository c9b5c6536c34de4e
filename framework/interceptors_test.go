package framework_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
)

// everyKind has an entrypoint of each kind.
type everyKind struct{ d *events.Dispatcher }

func (s *everyKind) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "ping", func(ctx context.Context, _ struct{}) (string, error) {
		return "pong", s.d.Dispatch(ctx, "pinged", "x")
	})
	events.Handle(r, "on_ping", "every_kind", "pinged", func(context.Context, string) error { return nil })
	timer.Handle(r, "tick", time.Hour, func(context.Context) error { return nil }, timer.Eager())
	httpentry.Handle(r, "GET /ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
}

// framework.Interceptors wrap every kind of entrypoint, and say which, and
// the service's dispatches; timer ticks and HTTP requests are counted.
func TestInterceptorsSeeEveryKind(t *testing.T) {
	var (
		mu         sync.Mutex
		seen       = map[entrypoint.Kind]string{}
		dispatched string
	)
	record := func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		mu.Lock()
		if call.Client {
			dispatched = string(call.Kind) + " " + call.Service + " " + call.Name
		} else {
			seen[call.Kind] = call.Service + " " + call.Name
		}
		mu.Unlock()
		return next(ctx)
	}
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"HTTP.ADDRESS": "127.0.0.1:0", "METRICS.ADDRESS": "127.0.0.1:0"}),
		framework.Interceptors(record),
		framework.Service("every_kind", func(d *events.Dispatcher) *everyKind { return &everyKind{d: d} }),
	)
	if err := dial(t).Proxy("every_kind").Call(context.Background(), "ping", nil, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + app.HTTPAddress() + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[entrypoint.Kind]string{
		entrypoint.KindRPC: "every_kind ping", entrypoint.KindEvent: "every_kind on_ping",
		entrypoint.KindTimer: "every_kind tick", entrypoint.KindHTTP: "every_kind GET /ping",
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		done := len(seen) == len(want)
		gotDispatched := dispatched
		got := map[entrypoint.Kind]string{}
		for k, v := range seen {
			got[k] = v
		}
		mu.Unlock()
		if done {
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: saw %q, want %q", k, got[k], v)
				}
			}
			if want := "event every_kind pinged"; gotDispatched != want {
				t.Errorf("client side: saw %q, want %q", gotDispatched, want)
			}
			metrics := scrape(t, app.MetricsAddress())
			if metricLine(metrics, "hypha_timer_ticks_total", `service="every_kind"`, `timer="tick"`, `outcome="ok"`) == "" {
				t.Errorf("no timer tick counted in\n%s", metrics)
			}
			if metricLine(metrics, "http_server_request_duration_seconds_count", `http_route="/ping"`) == "" {
				t.Errorf("no HTTP request counted in\n%s", metrics)
			}
			return
		}
		if time.Now().After(deadline) {
			kinds := make([]string, 0, len(got))
			for k := range got {
				kinds = append(kinds, string(k))
			}
			slices.Sort(kinds)
			t.Fatalf("the interceptor saw only %v", kinds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
