package behaviour

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/fx"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

var rpcCases = []behaviourCase{
	{name: "rpc results", run: testResults},
	{name: "rpc errors", run: testErrors},
	{name: "rpc timeout at the deadline", run: testTimeout},
	{name: "rpc expired call is not started", run: testExpiredCall},
	{name: "rpc unknown service fails at once", run: testServiceNotFound},
	{name: "rpc context data across two hops", run: testContextData},
	{name: "rpc reply key prefix", run: testReplyKeyPrefix},
}

type operands struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

type summaryIn struct {
	Values []float64 `json:"values"`
	Label  string    `json:"label"`
}

type summary struct {
	Label string  `json:"label"`
	Sum   float64 `json:"sum"`
	Count int     `json:"count"`
}

// errNegative is an expected error of arith.check.
var errNegative = rpc.NewError("ValueError", "negative number")

// arith answers, fails and panics on request.
type arith struct{}

func (arith) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "add", func(_ context.Context, in operands) (float64, error) { return in.A + in.B, nil })
	rpc.Handle(r, "summarize", func(_ context.Context, in summaryIn) (summary, error) {
		s := summary{Label: in.Label, Count: len(in.Values)}
		for _, v := range in.Values {
			s.Sum += v
		}
		return s, nil
	})
	rpc.Handle(r, "ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
	rpc.Handle(r, "budget", func(ctx context.Context, _ struct{}) (int64, error) {
		deadline, ok := ctx.Deadline()
		if !ok {
			return -1, nil
		}
		return time.Until(deadline).Milliseconds(), nil
	})
	rpc.Handle(r, "check", func(_ context.Context, in struct {
		N int `json:"n"`
	}) (int, error) {
		if in.N < 0 {
			return 0, fmt.Errorf("checking %d: %w", in.N, errNegative)
		}
		return in.N, nil
	}, rpc.Expected(errNegative))
	rpc.Handle(r, "fail", func(context.Context, struct{}) (int, error) { return 0, errors.New("boom") })
	rpc.Handle(r, "explode", func(context.Context, struct{}) (int, error) { panic("kaboom") })
}

func arithService(name string) framework.Option {
	return framework.Service(name, func() arith { return arith{} })
}

func testResults(t *testing.T, uri string) {
	hyphatest.Run(t, uri, arithService("arith_results"))
	p := client(t, uri).Proxy("arith_results")
	ctx := context.Background()

	var sum float64
	if err := p.Call(ctx, "add", operands{A: 1, B: 2}, &sum); err != nil || sum != 3 {
		t.Errorf("add with a struct's keyword arguments = %v, %v; want 3", sum, err)
	}
	if sum, err := rpc.Call[float64](ctx, p, "add", map[string]any{"a": 2.5, "b": 4}); err != nil || sum != 6.5 {
		t.Errorf("add with a map's keyword arguments = %v, %v; want 6.5", sum, err)
	}
	if sum, err := rpc.Call[float64](ctx, p, "add", rpc.Args(10, -4)); err != nil || sum != 6 {
		t.Errorf("add with positional arguments = %v, %v; want 6", sum, err)
	}
	got, err := rpc.Call[summary](ctx, p, "summarize", summaryIn{Values: []float64{1, 2, 3.5}, Label: "x"})
	if want := (summary{Label: "x", Sum: 6.5, Count: 3}); err != nil || got != want {
		t.Errorf("summarize = %+v, %v; want %+v", got, err, want)
	}
	if got, err := rpc.Call[string](ctx, p, "ping", nil); err != nil || got != "pong" {
		t.Errorf("ping without arguments = %q, %v; want pong", got, err)
	}
	// The handler's deadline is the caller's.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if left, err := rpc.Call[int64](short, p, "budget", nil); err != nil || left <= 0 || left > 2000 {
		t.Errorf("the handler has %d ms left, %v; want at most the caller's 2000", left, err)
	}
	// Calls in parallel each get their own result.
	replies := make([]*rpc.Reply, 20)
	for i := range replies {
		replies[i] = p.CallAsync(ctx, "add", rpc.Args(i, 100))
	}
	for i, r := range replies {
		var got float64
		if err := r.Result(&got); err != nil || got != float64(i+100) {
			t.Errorf("parallel add(%d, 100) = %v, %v", i, got, err)
		}
	}
}

// manyHeaders adds more headers to a request than a server reads.
func manyHeaders(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
	for i := range worker.MaxHeaders + 1 {
		call.Headers[fmt.Sprintf("x-pad-%d", i)] = i
	}
	return next(ctx)
}

func testErrors(t *testing.T, uri string) {
	const service = "arith_errors"
	// The server reads at most 4 KiB; the client sends up to the default 8 MiB.
	hyphatest.Run(t, uri, config(map[string]any{"MAX_MESSAGE_SIZE": 4096}), arithService(service))
	p := client(t, uri).Proxy(service)
	padded := client(t, uri, manyHeaders).Proxy(service)
	tests := []struct {
		name    string
		proxy   *rpc.Proxy
		method  string
		in      any
		is      error  // errors.Is must hold
		excType string // the RemoteError's exc_type
		value   string // in the RemoteError's value
	}{
		{"expected error", p, "check", map[string]any{"n": -1}, errNegative, "ValueError", "negative number"},
		{"plain error", p, "fail", nil, nil, "Error", "boom"},
		{"panic", p, "explode", nil, nil, "Panic", "kaboom"},
		{"method not found", p, "nope", nil, rpc.ErrMethodNotFound, "MethodNotFound", "nope"},
		{"unknown argument", p, "add", map[string]any{"a": 1, "b": 2, "c": 3}, rpc.ErrIncorrectSignature, "IncorrectSignature", ""},
		{"mistyped argument", p, "add", map[string]any{"a": "one", "b": 2}, rpc.ErrIncorrectSignature, "IncorrectSignature", ""},
		{"missing argument", p, "add", map[string]any{"a": 1}, rpc.ErrIncorrectSignature, "IncorrectSignature", ""},
		{"too many positional arguments", p, "add", rpc.Args(1, 2, 3), rpc.ErrIncorrectSignature, "IncorrectSignature", ""},
		{"too many headers", padded, "add", rpc.Args(1, 2), rpc.ErrMalformedRequest, "MalformedRequest", "256"},
		{"body over the server's MAX_MESSAGE_SIZE", p, "summarize", summaryIn{Values: []float64{1}, Label: strings.Repeat("x", 8192)},
			rpc.ErrMalformedRequest, "MalformedRequest", "MAX_MESSAGE_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.proxy.Call(context.Background(), tt.method, tt.in, nil)
			var re *rpc.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *rpc.RemoteError", err)
			}
			if re.ExcType != tt.excType || !strings.Contains(re.Value, tt.value) {
				t.Errorf("exc_type %q, value %q; want %q, containing %q", re.ExcType, re.Value, tt.excType, tt.value)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.is)
			}
		})
	}
	// The service keeps serving after every failure above.
	if got, err := rpc.Call[float64](context.Background(), p, "add", rpc.Args(1, 1)); err != nil || got != 2 {
		t.Fatalf("add after the failures = %v, %v", got, err)
	}
}

// gate is a service whose calls wait until released, counting how many ran.
type gate struct {
	started chan string
	release chan struct{}
	runs    atomic.Int64
}

func newGate() *gate { return &gate{started: make(chan string, 100), release: make(chan struct{})} }

func (g *gate) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "hold", func(ctx context.Context, in struct {
		ID string `json:"id"`
	}) (string, error) {
		g.started <- in.ID
		select {
		case <-g.release:
			return in.ID, nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	rpc.Handle(r, "count", func(context.Context, struct{}) (int64, error) { return g.runs.Add(1), nil })
}

func testTimeout(t *testing.T, uri string) {
	g := newGate()
	hyphatest.Run(t, uri, framework.Service("gate_timeout", func() *gate { return g }))
	const budget = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	began := time.Now()
	err := client(t, uri).Proxy("gate_timeout").Call(ctx, "hold", map[string]any{"id": "late"}, nil)
	took := time.Since(began)
	if !errors.Is(err, rpc.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want rpc.ErrTimeout", err)
	}
	if took < budget-10*time.Millisecond || took > budget+3*time.Second {
		t.Errorf("the call failed after %v, want at its deadline, %v", took, budget)
	}
}

func testExpiredCall(t *testing.T, uri string) {
	g := newGate()
	hyphatest.Run(t, uri, config(map[string]any{"MAX_WORKERS": 1}), framework.Service("gate_expiry", func() *gate { return g }))
	p := client(t, uri).Proxy("gate_expiry")
	held := p.CallAsync(context.Background(), "hold", map[string]any{"id": "busy"})
	receive(t, g.started, "the first call starting") // the one worker is busy now

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Call(ctx, "count", nil, nil); !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("the queued call: err = %v, want rpc.ErrTimeout", err)
	}
	// The request's expiration is what was left of the 200 ms when it was
	// sent, so it lapses about when the caller gives up; wait until it has
	// surely lapsed before freeing the worker, or the broker could deliver
	// it in the last milliseconds of its life.
	time.Sleep(300 * time.Millisecond)
	close(g.release)
	if err := held.Result(nil); err != nil {
		t.Fatal(err)
	}
	// A fresh call runs; the expired one was dropped without running.
	n, err := rpc.Call[int64](context.Background(), p, "count", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("count ran %d times, want 1: the expired call ran", n)
	}
}

func testServiceNotFound(t *testing.T, uri string) {
	hyphatest.Run(t, uri, arithService("arith_present"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	began := time.Now()
	err := client(t, uri).Proxy("arith_absent").Call(ctx, "add", rpc.Args(1, 2), nil)
	if !errors.Is(err, rpc.ErrServiceNotFound) {
		t.Fatalf("err = %v, want rpc.ErrServiceNotFound", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("the call failed after %v, want at once, long before its 20 s deadline", took)
	}
}

// hop records the context data of each call and relays it to next, if any.
type hop struct {
	name string
	next *rpc.Proxy
	seen chan<- hopSeen
}

type hopSeen struct {
	name string
	data contextdata.Data
}

func (h *hop) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "relay", func(ctx context.Context, _ struct{}) (string, error) {
		h.seen <- hopSeen{h.name, contextdata.From(ctx)}
		if h.next == nil {
			return h.name, nil
		}
		out, err := rpc.Call[string](ctx, h.next, "relay", nil)
		return h.name + ">" + out, err
	})
}

type hopDeps struct {
	fx.In
	Next *rpc.Proxy `name:"hop_b"`
}

func testContextData(t *testing.T, uri string) {
	seen := make(chan hopSeen, 2)
	hyphatest.Run(t, uri,
		framework.Service("hop_a", func(d hopDeps) *hop { return &hop{name: "hop_a", next: d.Next, seen: seen} }),
		framework.Service("hop_b", func() *hop { return &hop{name: "hop_b", seen: seen} }),
	)
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	ctx = contextdata.With(ctx, "tenant", "acme")
	out, err := rpc.Call[string](ctx, client(t, uri).Proxy("hop_a"), "relay", nil)
	if err != nil || out != "hop_a>hop_b" {
		t.Fatalf("relay = %q, %v", out, err)
	}
	stacks := map[string][]string{}
	for range 2 {
		s := receive(t, seen, "a hop's context data")
		c := contextdata.WithData(context.Background(), s.data)
		if contextdata.UserID(c) != "u-42" || contextdata.Get(c, "tenant") != "acme" {
			t.Errorf("%s saw %v, want user_id u-42 and tenant acme", s.name, s.data)
		}
		stacks[s.name] = contextdata.CallIDStack(c)
	}
	a, b := stacks["hop_a"], stacks["hop_b"]
	if len(a) != 2 || !strings.HasPrefix(a[0], rpc.StandaloneOwner+".") || !strings.HasPrefix(a[1], "hop_a.relay.") {
		t.Errorf("hop_a's call-id stack = %v, want the client's id and its own", a)
	}
	if len(b) != 3 || len(a) == 2 && (b[0] != a[0] || b[1] != a[1]) || !strings.HasPrefix(b[2], "hop_b.relay.") {
		t.Errorf("hop_b's call-id stack = %v, want hop_a's %v and its own", b, a)
	}
}

// keys answers with the routing key its reply goes back with, and relays
// to next for that of next's caller.
type keys struct{ next *rpc.Proxy }

func (k keys) Register(r *entrypoint.Registry) {
	rpc.HandleRaw(r, "reply_to", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		return reply.Reply(strconv.AppendQuote(nil, req.ReplyTo), "application/json")
	})
	rpc.Handle(r, "relay", func(ctx context.Context, _ struct{}) (string, error) {
		return rpc.Call[string](ctx, k.next, "reply_to", nil)
	})
}

type keysDeps struct {
	fx.In
	Next *rpc.Proxy `name:"keys_b"`
}

// testReplyKeyPrefix: replies reach clients whose reply keys have a prefix,
// a standalone client's (ReplyKeyPrefix) and a service's (RPC_REPLY_KEY_PREFIX), and
// clients without one keep nameko's bare uuid.
func testReplyKeyPrefix(t *testing.T, uri string) {
	hyphatest.Run(t, uri, config(map[string]any{"RPC_REPLY_KEY_PREFIX": "reply.keys"}),
		framework.Service("keys_a", func(d keysDeps) keys { return keys{next: d.Next} }),
		framework.Service("keys_b", func() keys { return keys{} }),
	)
	c, err := hyphatest.Client(t, context.Background(), uri, rpc.Config{Timeout: timeout, ReplyKeyPrefix: "reply.behaviour.dial"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		proxy  *rpc.Proxy
		method string
		prefix string
	}{
		{"a standalone client's", c.Proxy("keys_b"), "reply_to", "reply.behaviour.dial."},
		{"a service's", c.Proxy("keys_a"), "relay", "reply.keys."},
		{"no prefix", client(t, uri).Proxy("keys_b"), "reply_to", ""},
	} {
		key, err := rpc.Call[string](ctx, tc.proxy, tc.method, nil)
		id, found := strings.CutPrefix(key, tc.prefix)
		if err != nil || !found || uuid.Validate(id) != nil {
			t.Errorf("%s reply key = %q, %v; want %q and a uuid", tc.name, key, err, tc.prefix)
		}
	}
}
