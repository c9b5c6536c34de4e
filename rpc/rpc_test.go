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

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

func TestCallArguments(t *testing.T) {
	serve(t, "math_args", 4, mathService(nil))
	calc := newClient(t, 5*time.Second).Proxy("math_args")
	ctx := context.Background()

	tests := []struct {
		name   string
		method string
		in     any
		want   any
		errIs  error
		errMsg string
	}{
		{name: "kwargs struct", method: "add", in: pair{1, 2}, want: 3.0},
		{name: "kwargs map", method: "add", in: map[string]any{"a": 1.5, "b": 2}, want: 3.5},
		{name: "positional", method: "add", in: rpc.Args(1, 2), want: 3.0},
		{name: "positional and kwargs mixed via map", method: "add", in: map[string]any{"b": 2, "a": 5}, want: 7.0},
		{name: "optional omitted", method: "optional", in: map[string]any{"name": "ann"}, want: "hello ann"},
		{name: "optional pointer given", method: "optional", in: map[string]any{"name": "ann", "greet": "hi"}, want: "hi ann"},
		{name: "missing argument", method: "add", in: rpc.Args(1), errIs: rpc.ErrIncorrectSignature, errMsg: `missing required argument "b"`},
		{name: "too many positional", method: "add", in: rpc.Args(1, 2, 3), errIs: rpc.ErrIncorrectSignature, errMsg: "takes 2 positional arguments but 3 were given"},
		{name: "unknown kwarg", method: "add", in: map[string]any{"a": 1, "b": 2, "c": 3}, errIs: rpc.ErrIncorrectSignature, errMsg: `unexpected keyword argument "c"`},
		{name: "mistyped", method: "add", in: map[string]any{"a": "one", "b": 2}, errIs: rpc.ErrIncorrectSignature, errMsg: `argument "a": want number, got string`},
		{name: "twice", method: "optional", in: map[string]any{"name": "x"}, want: "hello x"},
		{name: "unknown method", method: "nope", in: nil, errIs: rpc.ErrMethodNotFound, errMsg: "nope"},
		{name: "null arguments", method: "add", in: rpc.Args(nil, nil), errIs: rpc.ErrIncorrectSignature, errMsg: `argument "a": want number, got null`},
		{name: "null keyword argument", method: "add", in: map[string]any{"a": 1, "b": nil}, errIs: rpc.ErrIncorrectSignature, errMsg: `argument "b": want number, got null`},
		{name: "the method's own input with an embedded struct", method: "place", in: order{Customer{"ann"}, "tea", 2}, want: "2 x tea for ann"},
		{name: "embedded fields positional", method: "place", in: rpc.Args("bo", "milk", 1), want: "1 x milk for bo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got any
			err := calc.Call(ctx, tt.method, tt.in, &got)
			if tt.errIs != nil {
				if !errors.Is(err, tt.errIs) {
					t.Fatalf("err = %v, want %v", err, tt.errIs)
				}
				var re *rpc.RemoteError
				if !errors.As(err, &re) || re.Value == "" || !contains(re.Value, tt.errMsg) {
					t.Fatalf("err = %#v, want value containing %q", err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHandleRefusesInputItCannotBind(t *testing.T) {
	tests := []struct {
		name     string
		register func(r *entrypoint.Registry)
		want     string
	}{
		{"not a struct", func(r *entrypoint.Registry) {
			rpc.Handle(r, "m", func(context.Context, int) (int, error) { return 0, nil })
		}, `rpc.Handle("m"): input type int is not a struct`},
		{"unexported fields only", func(r *entrypoint.Registry) {
			rpc.Handle(r, "m", func(context.Context, struct{ a int }) (int, error) { return 0, nil })
		}, "has no field arguments can fill"},
		{"channel field", func(r *entrypoint.Registry) {
			rpc.Handle(r, "m", func(context.Context, struct{ C chan int }) (int, error) { return 0, nil })
		}, "field C: no JSON value decodes into a chan int"},
		{"func field", func(r *entrypoint.Registry) {
			rpc.Handle(r, "m", func(context.Context, struct{ F func() }) (int, error) { return 0, nil })
		}, "field F: no JSON value decodes into a func()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := entrypoint.NewRegistry("svc")
			tt.register(reg)
			if err := reg.Err(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("registry error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func contains(s, sub string) bool { return len(sub) == 0 || (len(s) >= len(sub) && index(s, sub) >= 0) }

func index(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestErrors(t *testing.T) {
	serve(t, "math_errors", 4, mathService(nil))
	p := newClient(t, 5*time.Second).Proxy("math_errors")
	ctx := context.Background()

	t.Run("expected error keeps its type and path", func(t *testing.T) {
		_, err := rpc.Call[int](ctx, p, "sqrt_floor", map[string]any{"x": -1})
		if !errors.Is(err, errNegative) {
			t.Fatalf("err = %v, want errNegative", err)
		}
		var re *rpc.RemoteError
		errors.As(err, &re)
		want := rpc.RemoteError{ExcType: "NegativeError", ExcPath: "github.com/hypha-go/hypha/rpc_test.NegativeError",
			ExcArgs: []any{"negative input"}, Value: "negative input"}
		if re.ExcType != want.ExcType || re.ExcPath != want.ExcPath || re.Value != want.Value ||
			len(re.ExcArgs) != 1 || re.ExcArgs[0] != want.ExcArgs[0] {
			t.Fatalf("got %#v, want %#v", *re, want)
		}
	})
	t.Run("plain error is Error", func(t *testing.T) {
		err := p.Call(ctx, "fail", nil, nil)
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.ExcType != "Error" || re.Value != "disk on fire" {
			t.Fatalf("err = %#v", err)
		}
	})
	t.Run("panic is Panic and the service keeps serving", func(t *testing.T) {
		for range 3 {
			err := p.Call(ctx, "panic", nil, nil)
			var re *rpc.RemoteError
			if !errors.As(err, &re) || re.ExcType != "Panic" || re.Value != "boom" {
				t.Fatalf("err = %#v", err)
			}
		}
		if got, err := rpc.Call[float64](ctx, p, "add", rpc.Args(2, 2)); err != nil || got != 4 {
			t.Fatalf("after panics: %v, %v", got, err)
		}
	})
	t.Run("unserializable result", func(t *testing.T) {
		err := p.Call(ctx, "chan", nil, nil)
		if !errors.Is(err, rpc.ErrUnserializableValue) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestServiceNotFoundFailsAtOnce(t *testing.T) {
	c := newClient(t, 30*time.Second)
	start := time.Now()
	err := c.Proxy("no_such_service").Call(context.Background(), "anything", nil, nil)
	took := time.Since(start)
	if !errors.Is(err, rpc.ErrServiceNotFound) {
		t.Fatalf("err = %v, want ErrServiceNotFound", err)
	}
	// "At once" against "waits for the 30 s timeout": generous under -race
	// on a loaded machine, as in the behaviour suite.
	if took > 5*time.Second {
		t.Fatalf("took %v with RPC timeout 30s, want at once, long before the timeout", took)
	}
	// Many at once, interleaved with calls that do route: no return is missed
	// and no routed call is mistaken for a returned one.
	serve(t, "math_nf", 4, mathService(nil))
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for i := range 50 {
		wg.Go(func() {
			if i%2 == 0 {
				if err := c.Proxy("no_such_service").Call(context.Background(), "x", nil, nil); !errors.Is(err, rpc.ErrServiceNotFound) {
					wrong.Add(1)
				}
				return
			}
			if _, err := rpc.Call[float64](context.Background(), c.Proxy("math_nf"), "add", rpc.Args(i, 1)); err != nil {
				wrong.Add(1)
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Fatalf("%d of 50 calls had the wrong outcome", n)
	}
}

func TestTimeout(t *testing.T) {
	serve(t, "math_timeout", 4, mathService(nil))
	c := newClient(t, 30*time.Second)
	p := c.Proxy("math_timeout")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.Call(ctx, "sleep", map[string]any{"ms": 2000}, nil)
	took := time.Since(start)
	if !errors.Is(err, rpc.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrTimeout and DeadlineExceeded", err)
	}
	if took > time.Second {
		t.Fatalf("timed out after %v, want within 1s", took)
	}
	// The late reply (about 2s after the call) must not reach a later call.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		got, err := rpc.Call[float64](context.Background(), p, "add", rpc.Args(1, 1))
		if err != nil || got != 2 {
			t.Fatalf("later call got %v, %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	t.Run("config timeout", func(t *testing.T) {
		short := newClient(t, 300*time.Millisecond)
		err := short.Proxy("math_timeout").Call(context.Background(), "sleep", map[string]any{"ms": 1500}, nil)
		if !errors.Is(err, rpc.ErrTimeout) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestExpiredCallIsNotStarted(t *testing.T) {
	var counted atomic.Int64
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	serve(t, "math_busy", 1, func(r *entrypoint.Registry) {
		rpc.Handle(r, "block", func(context.Context, struct{}) (string, error) {
			started <- struct{}{}
			<-release
			return "done", nil
		})
		rpc.Handle(r, "count", func(context.Context, struct{}) (int64, error) {
			return counted.Add(1), nil
		})
	})
	rc := rawDial(t)
	queue := rpc.QueueName("math_busy")
	p := newClient(t, 10*time.Second).Proxy("math_busy")
	blocked := p.CallAsync(context.Background(), "block", nil)
	select {
	case <-started: // the one worker is busy now; with a prefetch of 1 the next request waits in the queue
	case <-time.After(waitBound):
		t.Fatal("the blocking call did not start")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	queued := p.CallAsync(ctx, "count", nil)
	waitFor(t, func() bool { return rc.readyMessages(t, queue) == 1 })
	if err := queued.Result(nil); !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("queued call: err = %v, want timeout", err)
	}
	// The request's expiration is what was left of the caller's budget when
	// it was sent, counted from when the broker took it, so it lapses a
	// little after the caller gave up; free the worker only once the broker
	// has dropped it, or it could be delivered in its last milliseconds.
	waitFor(t, func() bool { return rc.readyMessages(t, queue) == 0 })
	close(release)
	if err := blocked.Result(nil); err != nil {
		t.Fatal(err)
	}
	// A fresh call runs; the expired one was dropped without running.
	n, err := rpc.Call[int64](context.Background(), p, "count", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("handler ran %d times, want 1: the expired call ran", n)
	}
}

// Each instance runs at most its own workers' worth of calls at once, and
// the two instances share the service's queue.
func TestWorkersBoundAndShareQueue(t *testing.T) {
	const workers = 3
	var running, peak, counts [2]atomic.Int64
	for i := range 2 {
		serve(t, "math_pool", workers, func(r *entrypoint.Registry) {
			rpc.Handle(r, "work", func(context.Context, struct{}) (int, error) {
				n := running[i].Add(1)
				for {
					p := peak[i].Load()
					if n <= p || peak[i].CompareAndSwap(p, n) {
						break
					}
				}
				counts[i].Add(1)
				time.Sleep(30 * time.Millisecond)
				running[i].Add(-1)
				return i, nil
			})
		})
	}
	p := newClient(t, 20*time.Second).Proxy("math_pool")
	replies := make([]*rpc.Reply, 40)
	for i := range replies {
		replies[i] = p.CallAsync(context.Background(), "work", nil)
	}
	for _, r := range replies {
		if err := r.Result(nil); err != nil {
			t.Fatal(err)
		}
	}
	for i := range peak {
		if got := peak[i].Load(); got > workers {
			t.Fatalf("instance %d ran %d calls at once, want at most its %d workers", i, got, workers)
		}
	}
	if counts[0].Load() == 0 || counts[1].Load() == 0 {
		t.Fatalf("both instances should serve: %d and %d", counts[0].Load(), counts[1].Load())
	}
}

func TestReplyCanBeReadTwice(t *testing.T) {
	serve(t, "math_twice", 2, mathService(nil))
	r := newClient(t, 5*time.Second).Proxy("math_twice").CallAsync(context.Background(), "add", rpc.Args(2, 3))
	var a, b float64
	if err := r.Result(&a); err != nil {
		t.Fatal(err)
	}
	if err := r.Result(&b); err != nil || a != 5 || b != 5 {
		t.Fatalf("got %v, %v, %v", a, b, err)
	}
}

func TestClosedClient(t *testing.T) {
	c := newClient(t, 5*time.Second)
	c.Close()
	if err := c.Proxy("x").Call(context.Background(), "y", nil, nil); !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestWrappedRemoteErrorKeepsPythonsValue(t *testing.T) {
	serve(t, "math_wrapped", 1, func(r *entrypoint.Registry) {
		rpc.Handle(r, "root", func(_ context.Context, in struct {
			X int `json:"x"`
		}) (int, error) {
			return 0, fmt.Errorf("root of %d: %w", in.X, errNegative)
		}, rpc.Expected(errNegative))
	})
	err := newClient(t, 5*time.Second).Proxy("math_wrapped").Call(context.Background(), "root", rpc.Args(-4), nil)
	var re *rpc.RemoteError
	if !errors.As(err, &re) || !errors.Is(err, errNegative) {
		t.Fatalf("err = %v", err)
	}
	if re.ExcType != "NegativeError" || re.Value != "root of -4: negative input" {
		t.Fatalf("got %s / %q, want the message without the type name, as Python's str(exc)", re.ExcType, re.Value)
	}
}

func TestCallBeforeStartFailsAtOnce(t *testing.T) {
	b, err := dial.Dial(context.Background(), testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := rpc.NewClient(b, rpc.Config{Timeout: 30 * time.Second})
	start := time.Now()
	// "At once" against "waits for the 30 s timeout", with room for -race.
	if err := c.Proxy("anyone").Call(context.Background(), "x", nil, nil); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v, want a prompt error, long before the 30 s timeout", err, time.Since(start))
	}
}

func TestOnlyArgsArePositional(t *testing.T) {
	p := rpc.NewClient(nil, rpc.Config{}).Proxy("unsent") // refused before anything is sent
	ctx := context.Background()
	tests := []struct {
		name string
		in   any
	}{
		{"slice of any", []any{1, 2}},
		{"slice of ints", []int{1, 2}},
		{"array", [2]int{1, 2}},
		{"raw JSON array", json.RawMessage(`[1, 2]`)},
		{"string", "a"},
		{"nil map", map[string]any(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, err := range []error{p.Call(ctx, "m", tt.in, nil), p.CallAsync(ctx, "m", tt.in).Result(nil)} {
				if err == nil || !strings.Contains(err.Error(), "positional arguments with rpc.Args") {
					t.Fatalf("err = %v, want a refusal naming rpc.Args", err)
				}
			}
		})
	}
	// Args keeps its values in order, and with none makes an empty list
	// ("args": [] on the wire), not null; a Positional is still a []any to
	// code that wants one.
	var args []any = rpc.Args(1, "two")
	if !slices.Equal(args, []any{1, "two"}) {
		t.Fatalf("Args(1, \"two\") = %v, want [1 two]", args)
	}
	if b, err := json.Marshal(rpc.Args()); err != nil || string(b) != "[]" {
		t.Fatalf("Args() encodes as %s (%v), want []", b, err)
	}
}

// TestDottedNamesSayWhatIsWrong: a dot in a method name makes a routing key
// ("math_dots.add.x") that no "<service>.*" binding routes; the caller is
// told the method is not found, and why, not that the service is missing.
func TestDottedNamesSayWhatIsWrong(t *testing.T) {
	serve(t, "math_dots", 1, mathService(nil))
	c := newClient(t, 30*time.Second)
	for _, tc := range []struct {
		service, method string
		want            error
		says            string
	}{
		{"math_dots", "add.x", rpc.ErrMethodNotFound, `method name "add.x": want a name without dots`},
		{"math_dots", "", rpc.ErrMethodNotFound, `method name "": want a name without dots`},
		{"math_dots.add", "x", rpc.ErrServiceNotFound, `service name "math_dots.add": want a name without dots`},
		{"", "add", rpc.ErrServiceNotFound, `service name "": want a name without dots`},
	} {
		err := c.Proxy(tc.service).Call(context.Background(), tc.method, rpc.Args(1, 2), nil)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s.%s: err = %v; want %v saying %q", tc.service, tc.method, err, tc.want, tc.says)
		}
	}
}
