package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// rawService registers the raw methods the tests below call.
func rawService(rejected *atomic.Int32) func(r *entrypoint.Registry) {
	return func(r *entrypoint.Registry) {
		rpc.HandleRaw(r, "echo_json", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
			var in struct {
				Kwargs map[string]any `json:"kwargs"`
			}
			if err := json.Unmarshal(req.Body, &in); err != nil {
				return reply.Error("ValueError", err.Error())
			}
			body, _ := json.Marshal(in.Kwargs)
			return reply.Reply(body, "application/json")
		})
		rpc.HandleRaw(r, "upper", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
			return reply.Reply([]byte(strings.ToUpper(string(req.Body))), "text/plain")
		})
		rpc.HandleRaw(r, "refuse", func(_ context.Context, _ *rpc.RawRequest, reply *rpc.RawReply) error {
			return reply.Error("NotAllowed", "no uploads today")
		})
		rpc.HandleRaw(r, "fail", func(context.Context, *rpc.RawRequest, *rpc.RawReply) error {
			return errors.New("disk on fire")
		})
		rpc.HandleRaw(r, "nothing", func(context.Context, *rpc.RawRequest, *rpc.RawReply) error { return nil })
		rpc.HandleRaw(r, "panic", func(context.Context, *rpc.RawRequest, *rpc.RawReply) error { panic("boom") })
		rpc.HandleRaw(r, "bounce", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
			rejected.Add(1)
			return reply.Reject(true)
		})
	}
}

// A raw method's JSON reply, its Error and its returned errors reach a
// typed caller (as a nameko client) in nameko's reply shape.
func TestRawRepliesInNamekoShape(t *testing.T) {
	const service = "raw_shape"
	var rejected atomic.Int32
	serve(t, service, 4, rawService(&rejected))
	p := newClient(t, waitBound).Proxy(service)
	ctx := context.Background()

	got, err := rpc.Call[map[string]any](ctx, p, "echo_json", map[string]any{"x": 1.5})
	if err != nil || got["x"] != 1.5 {
		t.Fatalf("echo_json: %v, %v", got, err)
	}
	for _, tc := range []struct{ method, excType string }{
		{"refuse", "NotAllowed"}, {"fail", "Error"}, {"panic", "Panic"},
	} {
		_, err := rpc.Call[any](ctx, p, tc.method, struct{}{})
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.ExcType != tc.excType {
			t.Errorf("%s: err = %v, want a RemoteError %s", tc.method, err, tc.excType)
		}
	}
	if got, err := rpc.Call[any](ctx, p, "nothing", struct{}{}); got != nil || err != nil {
		t.Errorf("nothing: %v, %v; want a null result", got, err)
	}
}

// A raw method answers in any content type, to a caller that reads raw
// replies.
func TestRawReplyIsNotJSON(t *testing.T) {
	const service = "raw_bytes"
	var rejected atomic.Int32
	serve(t, service, 2, rawService(&rejected))
	rc := rawDial(t)
	corr := uuid.NewString()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	if err := rc.ch.PublishWithContext(ctx, rpc.DefaultExchange, service+".upper", true, false, amqp091.Publishing{
		ContentType: "text/plain", CorrelationId: corr, ReplyTo: rc.replyKey, Body: []byte("hello"),
	}); err != nil {
		t.Fatal(err)
	}
	d := waitReply(t, rc.replies, corr)
	if string(d.Body) != "HELLO" || d.ContentType != "text/plain" {
		t.Fatalf("reply %q (%s), want HELLO (text/plain)", d.Body, d.ContentType)
	}
}

// Requeues are bounded: a method that always rejects with requeue runs
// MaxRawRequeues+1 times, then the caller gets an error.
func TestRawRequeuesAreBounded(t *testing.T) {
	const service = "raw_bounce"
	var rejected atomic.Int32
	serve(t, service, 2, rawService(&rejected))
	_, err := rpc.Call[any](context.Background(), newClient(t, waitBound).Proxy(service), "bounce", struct{}{})
	var re *rpc.RemoteError
	if !errors.As(err, &re) || re.ExcType != "RequeueLimitError" {
		t.Fatalf("err = %v, want RequeueLimitError", err)
	}
	// The message says what the limit is, in words a caller can act on.
	if want := fmt.Sprintf("requeued %d times, the most a raw method may requeue one", rpc.MaxRawRequeues); !strings.Contains(re.Value, want) {
		t.Errorf("the error says %q; want it to say %q", re.Value, want)
	}
	if n := rejected.Load(); n != rpc.MaxRawRequeues+1 {
		t.Fatalf("the method ran %d times, want %d", n, rpc.MaxRawRequeues+1)
	}
	waitQueueEmpty(t, rpc.QueueName(service))
}

// A method that acked early is not cancelled when its connection drops, and
// the request is not delivered again.
func TestRawEarlyAckOutlivesTheConnection(t *testing.T) {
	const service = "raw_early"
	var runs atomic.Int32
	acked := make(chan struct{})
	finish := make(chan struct{})
	causes := make(chan error, 1)
	serve(t, service, 2, func(r *entrypoint.Registry) {
		rpc.HandleRaw(r, "upload", func(ctx context.Context, _ *rpc.RawRequest, reply *rpc.RawReply) error {
			if runs.Add(1) > 1 {
				return nil
			}
			if err := reply.Ack(); err != nil {
				return err
			}
			close(acked)
			select {
			case <-ctx.Done():
				causes <- context.Cause(ctx)
			case <-finish:
				causes <- nil
			}
			return nil
		})
		rpc.Handle(r, "ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
	})
	p := newClient(t, 30*time.Second).Proxy(service)
	_ = p.CallAsync(context.Background(), "upload", struct{}{})
	select {
	case <-acked:
	case <-time.After(waitBound):
		t.Fatal("the method never acked")
	}
	if out, err := testbroker.Rabbitmqctl("close_all_connections", "-p", testbroker.VHost(t), "test: connection lost"); err != nil {
		t.Fatalf("close_all_connections: %v\n%s", err, out)
	}
	// A lost delivery's cancellation comes as the connection drops, so
	// before the service answers again on a new one.
	eventually(t, "the service answering again", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return p.Call(ctx, "ping", nil, nil) == nil
	})
	close(finish)
	if cause := <-causes; cause != nil {
		t.Fatalf("the early-acked method was cancelled: %v", cause)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the method ran %d times, want 1", n)
	}
}

func TestHandleRawNeedsAName(t *testing.T) {
	r := entrypoint.NewRegistry("svc")
	rpc.HandleRaw(r, "", func(context.Context, *rpc.RawRequest, *rpc.RawReply) error { return nil })
	if err := r.Err(); err == nil || !strings.Contains(err.Error(), "needs a method name") {
		t.Fatalf("err = %v", err)
	}
}

// The bound holds on the embedded broker too.
func TestRawRequeuesAreBoundedOnTheEmbeddedBroker(t *testing.T) {
	const uri = "memory://rpc-raw-requeues"
	t.Cleanup(func() { memory.Reset("rpc-raw-requeues") })
	ctx := context.Background()
	broker, err := dial.Dial(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	var rejected atomic.Int32
	r := entrypoint.NewRegistry("raw_bounce")
	rawService(&rejected)(r)
	srv := rpc.NewServer(broker, r, rpc.ServerConfig{Service: "raw_bounce"})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(ctx)
	client, err := hyphatest.Client(t, ctx, uri, rpc.Config{Timeout: waitBound})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	_, err = rpc.Call[any](ctx, client.Proxy("raw_bounce"), "bounce", struct{}{})
	var re *rpc.RemoteError
	if !errors.As(err, &re) || re.ExcType != "RequeueLimitError" || rejected.Load() != rpc.MaxRawRequeues+1 {
		t.Fatalf("err = %v after %d runs, want RequeueLimitError after %d", err, rejected.Load(), rpc.MaxRawRequeues+1)
	}
}
