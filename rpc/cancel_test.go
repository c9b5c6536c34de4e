package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// lockedBuffer is a log destination that handlers may write to from any goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHandlerContextEndsWithTheConnection: when the connection that
// delivered a call is lost, the handler's context is cancelled (the call
// will run again), and the call is answered by its next run.
func TestHandlerContextEndsWithTheConnection(t *testing.T) {
	const service = "math_lost"
	var runs atomic.Int32
	started := make(chan struct{})
	causes := make(chan error, 1)
	serve(t, service, 2, func(r *entrypoint.Registry) {
		rpc.Handle(r, "hold", func(ctx context.Context, _ struct{}) (string, error) {
			if runs.Add(1) > 1 {
				return "second run", nil
			}
			close(started)
			<-ctx.Done()
			causes <- context.Cause(ctx)
			return "", ctx.Err()
		})
	})
	reply := newClient(t, 30*time.Second).Proxy(service).CallAsync(context.Background(), "hold", struct{}{})
	select {
	case <-started:
	case <-time.After(waitBound):
		t.Fatal("the handler never started")
	}
	if out, err := testbroker.Rabbitmqctl("close_all_connections", "-p", testbroker.VHost(t), "test: connection lost"); err != nil {
		t.Fatalf("close_all_connections: %v\n%s", err, out)
	}
	select {
	case cause := <-causes:
		if !errors.Is(cause, entrypoint.ErrLost) {
			t.Fatalf("the handler's context ended with %v, want entrypoint.ErrLost", cause)
		}
	case <-time.After(waitBound):
		t.Fatal("the handler's context was not cancelled when its connection was lost")
	}
	var got string
	if err := reply.Result(&got); err != nil || got != "second run" {
		t.Fatalf("the call: %q, %v; want the answer of its second run", got, err)
	}
}

// TestDeadlineFromExpiration: the server's deadline is its receive time plus
// the request's expiration, whatever the caller's clock says; the absolute
// header counts only without an expiration, and a call dropped for it is
// logged at warn and counted.
func TestDeadlineFromExpiration(t *testing.T) {
	const service = "math_skew"
	var logs lockedBuffer
	var expired atomic.Int32
	var calls atomic.Int64
	serveWith(t, rpc.ServerConfig{
		Service: service, Pool: worker.NewPool(2),
		Logger:    slog.New(slog.NewTextHandler(&logs, nil)),
		OnExpired: func(string) { expired.Add(1) },
	}, mathService(&calls))
	rc := rawDial(t)
	skewed := time.Now().Add(-time.Minute).UnixMilli() // a caller whose clock is a minute behind
	send := func(expiration string) string {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		corr := uuid.NewString()
		if err := rc.ch.PublishWithContext(ctx, rpc.DefaultExchange, service+".add", true, false, amqp091.Publishing{
			ContentType: "application/json", CorrelationId: corr, ReplyTo: rc.replyKey, Expiration: expiration,
			Headers: amqp091.Table{"x-hypha-deadline": skewed}, Body: []byte(`{"args": [1, 2], "kwargs": {}}`),
		}); err != nil {
			t.Fatal(err)
		}
		return corr
	}
	corr := send("5000")
	if d := waitReply(t, rc.replies, corr); !strings.Contains(string(d.Body), `"result": 3`) && !strings.Contains(string(d.Body), `"result":3`) {
		t.Fatalf("with an expiration the call must run: reply %s", d.Body)
	}
	send("")
	deadline := time.Now().Add(waitBound)
	for expired.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := expired.Load(); n != 1 {
		t.Fatalf("OnExpired called %d times, want 1", n)
	}
	if calls.Load() != 1 {
		t.Errorf("the handler ran %d times, want 1", calls.Load())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "caller gave up") {
		t.Errorf("the dropped call was not logged at warn:\n%s", logs.String())
	}
	waitQueueEmpty(t, rpc.QueueName(service))
}

// TestHandlerTimeoutIsNotAFailure: a handler that returns because its
// context ended is logged as giving up, at warn, not as a failed call.
func TestHandlerTimeoutIsNotAFailure(t *testing.T) {
	const service = "math_gives_up"
	var logs lockedBuffer
	serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(2), Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func(r *entrypoint.Registry) {
			rpc.Handle(r, "wait", func(ctx context.Context, _ struct{}) (string, error) {
				<-ctx.Done()
				return "", ctx.Err()
			})
		})
	_, err := rpc.Call[string](context.Background(), newClient(t, 300*time.Millisecond).Proxy(service), "wait", struct{}{})
	if !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("call: %v, want ErrTimeout", err)
	}
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(logs.String(), "gave up") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || strings.Contains(out, "call failed") {
		t.Fatalf("want a warning that the call gave up, not a failure:\n%s", out)
	}
}

// TestCallPastItsDeadline: a call made after its deadline says so, rather
// than "no reply within -1ms".
func TestCallPastItsDeadline(t *testing.T) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err := rpc.Call[float64](ctx, newClient(t, waitBound).Proxy("math_anything"), "add", rpc.Args(1, 2))
	if !errors.Is(err, rpc.ErrTimeout) || !strings.Contains(err.Error(), "deadline had passed before the call was made") {
		t.Fatalf("err = %v", err)
	}
}
