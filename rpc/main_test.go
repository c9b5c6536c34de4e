package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

// serve runs a service with the methods register adds, on a connection of its
// own, until the test ends.
func serve(t *testing.T, service string, workers int, register func(r *entrypoint.Registry)) *rpc.Server {
	t.Helper()
	return serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(workers)}, register)
}

// serveWith is serve with a whole server config.
func serveWith(t *testing.T, cfg rpc.ServerConfig, register func(r *entrypoint.Registry)) *rpc.Server {
	t.Helper()
	ctx := context.Background()
	broker, err := dial.Dial(ctx, testbroker.URI(t), dial.Name(cfg.Service))
	if err != nil {
		t.Fatal(err)
	}
	reg := entrypoint.NewRegistry(cfg.Service)
	register(reg)
	if err := reg.Err(); err != nil {
		broker.Close()
		t.Fatal(err)
	}
	srv := rpc.NewServer(broker, reg, cfg)
	if err := srv.Start(ctx); err != nil {
		broker.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Error("stop:", err)
		}
		broker.Close()
	})
	return srv
}

// newClient returns a standalone client closed when the test ends.
func newClient(t *testing.T, timeout time.Duration, interceptors ...entrypoint.Interceptor) *rpc.Client {
	t.Helper()
	c, err := hyphatest.Client(t, context.Background(), testbroker.URI(t), rpc.Config{Timeout: timeout, Interceptors: interceptors})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Customer is embedded in order: its fields are order's arguments too.
type Customer struct {
	Customer string `json:"customer"`
}

type order struct {
	Customer
	Item string `json:"item"`
	Qty  int    `json:"qty"`
}

type pair struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

var errNegative = rpc.NewError("NegativeError", "negative input")

// mathService registers the methods most tests call.
func mathService(calls *atomic.Int64) func(r *entrypoint.Registry) {
	return func(r *entrypoint.Registry) {
		rpc.Handle(r, "add", func(_ context.Context, in pair) (float64, error) {
			if calls != nil {
				calls.Add(1)
			}
			return in.A + in.B, nil
		})
		rpc.Handle(r, "sqrt_floor", func(_ context.Context, in struct {
			X int `json:"x"`
		}) (int, error) {
			if in.X < 0 {
				return 0, errNegative
			}
			n := 0
			for (n+1)*(n+1) <= in.X {
				n++
			}
			return n, nil
		}, rpc.Expected(errNegative))
		rpc.Handle(r, "fail", func(context.Context, struct{}) (any, error) {
			return nil, errors.New("disk on fire")
		})
		rpc.Handle(r, "panic", func(context.Context, struct{}) (any, error) {
			panic("boom")
		})
		rpc.Handle(r, "optional", func(_ context.Context, in struct {
			Name  string  `json:"name"`
			Greet *string `json:"greet"`
			Times int     `json:"times,omitempty"`
		}) (string, error) {
			g := "hello"
			if in.Greet != nil {
				g = *in.Greet
			}
			return g + " " + in.Name, nil
		})
		rpc.Handle(r, "sleep", func(ctx context.Context, in struct {
			MS int `json:"ms"`
		}) (string, error) {
			time.Sleep(time.Duration(in.MS) * time.Millisecond)
			return "slept", nil
		})
		rpc.Handle(r, "chan", func(context.Context, struct{}) (chan int, error) {
			return make(chan int), nil
		})
		rpc.Handle(r, "place", func(_ context.Context, in order) (string, error) {
			return fmt.Sprintf("%d x %s for %s", in.Qty, in.Item, in.Customer.Customer), nil
		})
	}
}
