package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// serveIntercepted is serve with server interceptors.
func serveIntercepted(t *testing.T, service string, register func(r *entrypoint.Registry), interceptors ...entrypoint.Interceptor) {
	t.Helper()
	serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(4), Interceptors: interceptors}, register)
}

// dialIntercepted is dial with client interceptors.
func dialIntercepted(t *testing.T, interceptors ...entrypoint.Interceptor) *rpc.Client {
	t.Helper()
	return newClient(t, 5*time.Second, interceptors...)
}

// eventLog records what interceptors and handlers see, from any goroutine.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
}

// take returns the events so far and clears the log.
func (l *eventLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

// spec is the RPC call an interceptor is given.
func spec(call *entrypoint.Call) *rpc.CallInfo { return call.Spec.(*rpc.CallInfo) }

func record(log *eventLog, name string) entrypoint.Interceptor {
	return func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		log.add("%s before", name)
		err := next(ctx)
		log.add("%s after err=%v", name, err != nil)
		return err
	}
}

type ctxKey struct{}

func TestInterceptorOrder(t *testing.T) {
	const service = "icpt_order"
	var log eventLog
	// s1 also hands the handler a context value.
	s1 := func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		return record(&log, "s1")(context.WithValue(ctx, ctxKey{}, "from s1"), call, next)
	}
	serveIntercepted(t, service, func(r *entrypoint.Registry) {
		rpc.Handle(r, "add", func(ctx context.Context, in pair) (float64, error) {
			log.add("handler %v", ctx.Value(ctxKey{}))
			return in.A + in.B, nil
		})
		rpc.Handle(r, "fail", func(context.Context, struct{}) (any, error) {
			log.add("handler fail")
			return nil, errors.New("disk on fire")
		})
		rpc.Handle(r, "panic", func(context.Context, struct{}) (any, error) {
			log.add("handler panic")
			panic("boom")
		})
	}, s1, record(&log, "s2"))
	p := dialIntercepted(t, record(&log, "c1"), record(&log, "c2")).Proxy(service)
	ctx := context.Background()

	around := func(handler string, failed bool) []string {
		return []string{
			"c1 before", "c2 before",
			"s1 before", "s2 before",
			handler,
			fmt.Sprintf("s2 after err=%v", failed), fmt.Sprintf("s1 after err=%v", failed),
			fmt.Sprintf("c2 after err=%v", failed), fmt.Sprintf("c1 after err=%v", failed),
		}
	}
	for i := range 3 { // every call, not just the first
		got, err := rpc.Call[float64](ctx, p, "add", rpc.Args(i, 1))
		if err != nil || got != float64(i+1) {
			t.Fatalf("call %d: %v, %v", i, got, err)
		}
		if ev, want := log.take(), around("handler from s1", false); !slices.Equal(ev, want) {
			t.Fatalf("call %d:\n got %q\nwant %q", i, ev, want)
		}
	}
	if err := p.Call(ctx, "fail", nil, nil); err == nil {
		t.Fatal("fail: no error")
	}
	if ev, want := log.take(), around("handler fail", true); !slices.Equal(ev, want) {
		t.Fatalf("failing call:\n got %q\nwant %q", ev, want)
	}
	// A panicking handler is recovered inside the chain: the interceptors
	// still see the call end, with an error.
	var re *rpc.RemoteError
	if err := p.Call(ctx, "panic", nil, nil); !errors.As(err, &re) || re.ExcType != "Panic" {
		t.Fatalf("panic: err = %v", err)
	}
	if ev, want := log.take(), around("handler panic", true); !slices.Equal(ev, want) {
		t.Fatalf("panicking call:\n got %q\nwant %q", ev, want)
	}
}

func TestInterceptorCallInfo(t *testing.T) {
	const service = "icpt_info"
	type seen struct {
		service, method, corr string
		headers               map[string]any
		deadline              time.Time
	}
	var mu sync.Mutex
	var client, server []seen
	serveIntercepted(t, service, func(r *entrypoint.Registry) {
		rpc.Handle(r, "add", func(ctx context.Context, in pair) (float64, error) {
			if got := contextdata.String(ctx, "tenant"); got != "acme" {
				return 0, fmt.Errorf("context data tenant = %q, want acme", got)
			}
			return in.A + in.B, nil
		})
	}, func(ctx context.Context, ec *entrypoint.Call, next entrypoint.Next) error {
		call := spec(ec)
		if ec.Client || ec.Kind != entrypoint.KindRPC || ec.Service != call.Service || ec.Name != call.Method {
			t.Errorf("server interceptor: Call %+v for %s.%s", ec, call.Service, call.Method)
		}
		mu.Lock()
		server = append(server, seen{call.Service, call.Method, call.CorrelationID, ec.Headers, call.Deadline})
		mu.Unlock()
		return next(ctx)
	})
	p := dialIntercepted(t, func(ctx context.Context, ec *entrypoint.Call, next entrypoint.Next) error {
		call := spec(ec)
		if !ec.Client || ec.Kind != entrypoint.KindRPC || ec.Service != call.Service || ec.Name != call.Method {
			t.Errorf("client interceptor: Call %+v for %s.%s", ec, call.Service, call.Method)
		}
		ec.Headers["x-test-header"] = "added by the client"
		call.Headers["nameko.tenant"] = "acme" // context data the handler sees
		mu.Lock()
		client = append(client, seen{call.Service, call.Method, call.CorrelationID, nil, call.Deadline})
		mu.Unlock()
		return next(ctx)
	}).Proxy(service)

	const calls = 3
	for i := range calls {
		if got, err := rpc.Call[float64](context.Background(), p, "add", rpc.Args(i, i)); err != nil || got != float64(2*i) {
			t.Fatalf("call %d: %v, %v", i, got, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(client) != calls || len(server) != calls {
		t.Fatalf("client interceptor saw %d calls, server interceptor %d; want %d each", len(client), len(server), calls)
	}
	ids := map[string]bool{}
	for i := range calls {
		c, s := client[i], server[i]
		if c.service != service || c.method != "add" {
			t.Errorf("call %d: client saw %s.%s, want %s.add", i, c.service, c.method, service)
		}
		if s.service != service || s.method != "add" {
			t.Errorf("call %d: server saw %s.%s, want %s.add", i, s.service, s.method, service)
		}
		if c.corr == "" || c.corr != s.corr {
			t.Errorf("call %d: client correlation id %q, server %q; want the same, not empty", i, c.corr, s.corr)
		}
		ids[c.corr] = true
		if got := s.headers["x-test-header"]; got != "added by the client" {
			t.Errorf("call %d: server saw header x-test-header = %#v; headers %v", i, got, s.headers)
		}
		// The server's deadline is its receive time plus the budget the
		// request's expiration carries: the client's, give or take the transit.
		if diff := s.deadline.Sub(c.deadline).Abs(); c.deadline.IsZero() || diff > time.Second {
			t.Errorf("call %d: client deadline %v, server %v; want them within a second", i, c.deadline, s.deadline)
		}
	}
	if len(ids) != calls {
		t.Errorf("correlation ids %v are not unique per call", ids)
	}
}

var errUnauthorized = rpc.NewError("Unauthorized", "no token")

func TestServerInterceptorShortCircuits(t *testing.T) {
	const service = "icpt_short"
	var ran atomic.Int64
	serveIntercepted(t, service, func(r *entrypoint.Registry) {
		rpc.Handle(r, "add", func(_ context.Context, in pair) (float64, error) {
			ran.Add(1)
			return in.A + in.B, nil
		})
	}, func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		switch call.Headers["x-test-token"] {
		case "good":
			return next(ctx)
		case "plain":
			return errors.New("refused by interceptor")
		case "result":
			spec(call).Result = 99.0 // answers without the handler
			return nil
		}
		return errUnauthorized
	})
	var sawMu sync.Mutex
	var clientSaw error
	token := func(tok string) entrypoint.Interceptor {
		return func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
			if tok != "" {
				call.Headers["x-test-token"] = tok
			}
			err := next(ctx)
			if err != nil {
				sawMu.Lock()
				clientSaw = err
				sawMu.Unlock()
			}
			return err
		}
	}
	ctx := context.Background()

	t.Run("typed error", func(t *testing.T) {
		_, err := rpc.Call[float64](ctx, dialIntercepted(t, token("")).Proxy(service), "add", rpc.Args(1, 2))
		var re *rpc.RemoteError
		if !errors.As(err, &re) || !errors.Is(err, errUnauthorized) {
			t.Fatalf("err = %v, want RemoteError Unauthorized", err)
		}
		if re.ExcType != "Unauthorized" || re.ExcPath != errUnauthorized.ExcPath || re.Value != "no token" {
			t.Fatalf("got %#v", *re)
		}
		sawMu.Lock()
		saw := clientSaw
		sawMu.Unlock()
		if !errors.Is(saw, errUnauthorized) {
			t.Fatalf("client interceptor saw %v", saw)
		}
	})
	t.Run("plain error", func(t *testing.T) {
		err := dialIntercepted(t, token("plain")).Proxy(service).Call(ctx, "add", rpc.Args(1, 2), nil)
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.ExcType != "Error" || re.Value != "refused by interceptor" {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("result without handler", func(t *testing.T) {
		got, err := rpc.Call[float64](ctx, dialIntercepted(t, token("result")).Proxy(service), "add", rpc.Args(1, 2))
		if err != nil || got != 99 {
			t.Fatalf("got %v, %v; want 99 from the interceptor", got, err)
		}
	})
	if n := ran.Load(); n != 0 {
		t.Fatalf("handler ran %d times behind a short-circuiting interceptor", n)
	}
	t.Run("allowed", func(t *testing.T) {
		got, err := rpc.Call[float64](ctx, dialIntercepted(t, token("good")).Proxy(service), "add", rpc.Args(1, 2))
		if err != nil || got != 3 || ran.Load() != 1 {
			t.Fatalf("got %v, %v, handler ran %d times", got, err, ran.Load())
		}
	})
}

func TestClientInterceptorShortCircuits(t *testing.T) {
	// No service runs: a client interceptor that answers itself never
	// reaches the broker (a real call would fail with ErrServiceNotFound).
	cached := func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		if call.Name == "cached" {
			spec(call).Result = json.RawMessage(`"from cache"`)
			return nil
		}
		return next(ctx)
	}
	p := dialIntercepted(t, cached).Proxy("icpt_nobody")
	got, err := rpc.Call[string](context.Background(), p, "cached", nil)
	if err != nil || got != "from cache" {
		t.Fatalf("got %q, %v", got, err)
	}
	if err := p.Call(context.Background(), "other", nil, nil); !errors.Is(err, rpc.ErrServiceNotFound) {
		t.Fatalf("uncached call: err = %v, want ErrServiceNotFound", err)
	}
}

var errWrappedExpected = rpc.NewError("OutOfStock", "out of stock")

func TestCallInfoIsExpected(t *testing.T) {
	const service = "icpt_expected"
	var mu sync.Mutex
	expected := map[string]bool{}
	clientExpected := map[string]bool{}
	serveIntercepted(t, service, func(r *entrypoint.Registry) {
		mathService(nil)(r)
		rpc.Handle(r, "reserve", func(_ context.Context, in struct {
			Item string `json:"item"`
		}) (string, error) {
			return "", fmt.Errorf("reserving %s: %w", in.Item, errWrappedExpected)
		}, rpc.Expected(errWrappedExpected))
		rpc.Handle(r, "undeclared", func(context.Context, struct{}) (string, error) {
			return "", errNegative // declared by sqrt_floor, not by this method
		})
	}, func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		err := next(ctx)
		if call.IsExpected(err) != spec(call).IsExpected(err) {
			t.Errorf("%s: Call.IsExpected = %v, CallInfo.IsExpected = %v", call.Name, call.IsExpected(err), spec(call).IsExpected(err))
		}
		mu.Lock()
		expected[call.Name] = spec(call).IsExpected(err)
		mu.Unlock()
		return err
	})
	p := dialIntercepted(t, func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		err := next(ctx)
		mu.Lock()
		clientExpected[call.Name] = spec(call).IsExpected(err)
		mu.Unlock()
		return err
	}).Proxy(service)
	ctx := context.Background()

	tests := []struct {
		method string
		in     any
		errIs  error // nil: the call succeeds
		want   bool
	}{
		{method: "sqrt_floor", in: map[string]any{"x": -1}, errIs: errNegative, want: true},
		{method: "reserve", in: map[string]any{"item": "socks"}, errIs: errWrappedExpected, want: true},
		{method: "fail", in: nil, errIs: errors.New("any"), want: false},
		{method: "undeclared", in: nil, errIs: errNegative, want: false},
		{method: "panic", in: nil, errIs: errors.New("any"), want: false},
		{method: "add", in: rpc.Args(1, 2), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			err := p.Call(ctx, tt.method, tt.in, nil)
			switch {
			case tt.errIs == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.errIs != nil && err == nil:
				t.Fatal("no error")
			case tt.errIs != nil && errors.As(tt.errIs, new(*rpc.RemoteError)) && !errors.Is(err, tt.errIs):
				t.Fatalf("err = %v, want %v", err, tt.errIs)
			}
			mu.Lock()
			defer mu.Unlock()
			got, ok := expected[tt.method]
			if !ok {
				t.Fatal("server interceptor did not run")
			}
			if got != tt.want {
				t.Errorf("server CallInfo.IsExpected = %v, want %v", got, tt.want)
			}
			if clientExpected[tt.method] {
				t.Errorf("client CallInfo.IsExpected = true; it is documented to be always false")
			}
		})
	}
}

func TestPanickingInterceptorsDoNotCrash(t *testing.T) {
	var calls atomic.Int64
	serveIntercepted(t, "ic_panic", func(r *entrypoint.Registry) {
		rpc.Handle(r, "ok", func(context.Context, struct{}) (string, error) { return "ok", nil })
	}, func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		if calls.Add(1) == 1 {
			panic("interceptor boom")
		}
		return next(ctx)
	})
	c := dialIntercepted(t)
	err := c.Proxy("ic_panic").Call(context.Background(), "ok", nil, nil)
	var re *rpc.RemoteError
	if !errors.As(err, &re) || re.ExcType != "Panic" || re.Value != "interceptor boom" {
		t.Fatalf("err = %#v, want a Panic RemoteError", err)
	}
	if got, err := rpc.Call[string](context.Background(), c.Proxy("ic_panic"), "ok", nil); err != nil || got != "ok" {
		t.Fatalf("after the panic: %q, %v", got, err)
	}
	panicky := dialIntercepted(t, func(context.Context, *entrypoint.Call, entrypoint.Next) error {
		panic("client boom")
	})
	if err := panicky.Proxy("ic_panic").Call(context.Background(), "ok", nil, nil); err == nil || !strings.Contains(err.Error(), "client boom") {
		t.Fatalf("client interceptor panic: err = %v", err)
	}
}

func TestIdempotentMarksOnlyItsOwnCall(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var c *rpc.Client
	c = dialIntercepted(t, func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		mu.Lock()
		seen[call.Name] = spec(call).Idempotent
		mu.Unlock()
		if call.Name == "outer" {
			// A call an interceptor makes on the way, with the call's context.
			_ = c.Proxy("idem_nobody").Call(ctx, "inner", nil, nil)
		}
		return next(ctx)
	})
	ctx := context.Background()
	p := c.Proxy("idem_nobody")
	_ = p.Idempotent().Call(ctx, "outer", nil, nil)
	_ = p.Call(ctx, "later", nil, nil)
	mu.Lock()
	defer mu.Unlock()
	for method, want := range map[string]bool{"outer": true, "inner": false, "later": false} {
		if got, ok := seen[method]; !ok || got != want {
			t.Errorf("%s: CallInfo.Idempotent = %v (seen %v), want %v", method, got, ok, want)
		}
	}
}
