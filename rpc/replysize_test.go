package rpc_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// A result over the server's MAX_MESSAGE_SIZE cannot be sent; the caller
// gets an error reply that says so at once, instead of waiting for its
// timeout, and the request is settled, not redelivered to run again.
func TestReplyTooLargeBecomesAnError(t *testing.T) {
	const limit = 64 << 10
	ctx := context.Background()
	broker, err := dial.Dial(ctx, testbroker.URI(t), dial.Name("big_replies"), maxMessageSize(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var runs atomic.Int32
	reg := entrypoint.NewRegistry("big_replies")
	rpc.Handle(reg, "echo", func(_ context.Context, in struct {
		N int `json:"n"`
	}) (string, error) {
		runs.Add(1)
		return strings.Repeat("x", in.N), nil
	})
	if err := reg.Err(); err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(broker, reg, rpc.ServerConfig{Service: "big_replies", Pool: worker.NewPool(2)})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Error("stop:", err)
		}
	}()
	const timeout = 20 * time.Second
	p := newClient(t, timeout).Proxy("big_replies")

	start := time.Now()
	_, err = rpc.Call[string](ctx, p, "echo", map[string]any{"n": 2 * limit})
	var re *rpc.RemoteError
	if !errors.As(err, &re) || re.ExcType != "Error" || !strings.Contains(re.Value, "too large") {
		t.Fatalf("err = %#v, want a remote Error saying the reply is too large", err)
	}
	if waited := time.Since(start); waited > timeout/2 {
		t.Fatalf("the error came after %v, as if the caller had waited for its timeout", waited)
	}
	// A reply within the limit still goes through, and the large call ran once.
	got, err := rpc.Call[string](ctx, p, "echo", map[string]any{"n": limit / 2})
	if err != nil || len(got) != limit/2 {
		t.Fatalf("after the large reply: %d bytes, %v", len(got), err)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("the method ran %d times for two calls; the large one was redelivered", n)
	}
}
