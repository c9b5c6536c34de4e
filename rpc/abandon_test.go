package rpc_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
)

// TestLostConnectionErrorIsNeverTheReply: a handler whose publish lost its
// connection (transport.ErrUncertain) is abandoned, never answered: the
// request goes back to its queue, and the caller gets the answer of the run
// that follows. The failover is logged at warn, never at error, whichever
// way it reached the handler.
func TestLostConnectionErrorIsNeverTheReply(t *testing.T) {
	const service = "math_uncertain"
	logs := &lockedBuffer{}
	var runs atomic.Int32
	serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(2),
		Logger: slog.New(slog.NewTextHandler(logs, nil))}, func(r *entrypoint.Registry) {
		rpc.Handle(r, "save", func(ctx context.Context, _ struct{}) (string, error) {
			if runs.Add(1) == 1 {
				return "", fmt.Errorf("saving the order: %w", transport.ErrUncertain)
			}
			return "saved", nil
		})
		rpc.HandleRaw(r, "save_raw", func(ctx context.Context, _ *rpc.RawRequest, _ *rpc.RawReply) error {
			if runs.Add(1) == 3 {
				return fmt.Errorf("saving the order: %w", transport.ErrUncertain)
			}
			return nil
		})
	})
	c := newClient(t, 10*time.Second)
	var got string
	if err := c.Proxy(service).Call(context.Background(), "save", struct{}{}, &got); err != nil || got != "saved" {
		t.Fatalf("call: %q, %v; want the answer of the run after the lost connection", got, err)
	}
	if err := c.Proxy(service).Call(context.Background(), "save_raw", struct{}{}, nil); err != nil {
		t.Fatalf("raw call: %v; want the answer of the run after the lost connection", err)
	}
	if n := runs.Load(); n != 4 {
		t.Fatalf("the handlers ran %d times, want 4 (each twice)", n)
	}
	out := logs.String()
	if strings.Contains(out, "level=ERROR") || strings.Count(out, "call abandoned") != 2 {
		t.Fatalf("want two warnings that the call was abandoned, no error:\n%s", out)
	}
}
