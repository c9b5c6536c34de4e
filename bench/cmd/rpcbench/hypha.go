package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// calculatorName is the service every contender calls add on.
const calculatorName = "calculator"

// operands are add's arguments: calculator.add(1, 2, pad), the pad only
// there to make the request the payload's size.
type operands struct {
	A   float64 `json:"a"`
	B   float64 `json:"b"`
	Pad string  `json:"pad"`
}

type calculator struct{}

func (calculator) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "add", func(_ context.Context, in operands) (float64, error) { return in.A + in.B, nil })
}

// hyphaServe runs the calculator with rpc.Plugin's server on a broker of its own
// (dialled by URI through transport/dial) with workers workers (MAX_WORKERS).
func hyphaServe(ctx context.Context, uri string, workers int) (stop func(), err error) {
	broker, err := dial.Dial(ctx, uri, dial.Name(calculatorName))
	if err != nil {
		return nil, err
	}
	reg := entrypoint.NewRegistry(calculatorName)
	calculator{}.Register(reg)
	if err := reg.Err(); err != nil {
		broker.Close()
		return nil, err
	}
	pool := worker.NewPool(workers)
	srv, err := rpc.Plugin().Serve(&entrypoint.Service{Name: calculatorName, Registry: reg, Broker: broker, Pool: pool,
		Settings: config.DefaultSettings()})
	if err != nil {
		broker.Close()
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		broker.Close()
		return nil, err
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Drain(sctx)
		_ = pool.Wait(sctx)
		_ = srv.Close()
		broker.Close()
	}, nil
}

// hyphaDial returns a standalone Hypha client's call of calculator.add, with
// transient requests when transient is set.
func hyphaDial(ctx context.Context, uri string, transient bool) (caller, func(), error) {
	conn, err := dial.Dial(ctx, uri, dial.Name(rpc.StandaloneOwner))
	if err != nil {
		return nil, nil, err
	}
	c := rpc.NewClient(conn, rpc.Config{Timeout: callTimeout, Transient: transient})
	if err := c.Start(ctx); err != nil {
		conn.Close()
		return nil, nil, err
	}
	proxy := c.Proxy(calculatorName)
	call := func(ctx context.Context, pad string) error {
		var sum float64
		if err := proxy.Call(ctx, "add", rpc.Args(1, 2, pad), &sum); err != nil {
			return err
		}
		if sum != 3 {
			return fmt.Errorf("%w: %v", errBadReply, sum)
		}
		return nil
	}
	return call, func() { c.Close(); conn.Close() }, nil
}
