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

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// touchy panics when it decodes the string "boom".
type touchy string

func (t *touchy) UnmarshalJSON(b []byte) error {
	if string(b) == `"boom"` {
		panic("touchy cannot take boom")
	}
	return json.Unmarshal(b, (*string)(t))
}

// explosive panics when encoded.
type explosive struct{}

func (explosive) MarshalJSON() ([]byte, error) { panic("explosive cannot be encoded") }

// nilErr is an error type whose Error panics on a nil pointer.
type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

// publishRaw sends a request with the given headers and body through rc and
// returns its reply.
func publishRaw(t *testing.T, rc *rawClient, routingKey string, headers amqp091.Table, body []byte) wireReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	corr := uuid.NewString()
	err := rc.ch.PublishWithContext(ctx, rpc.DefaultExchange, routingKey, true, false, amqp091.Publishing{
		ContentType: "application/json", DeliveryMode: amqp091.Persistent, CorrelationId: corr,
		ReplyTo: rc.replyKey, Headers: headers, Body: body,
	})
	if err != nil {
		t.Fatal(err)
	}
	d := waitReply(t, rc.replies, corr)
	var rep wireReply
	if err := json.Unmarshal(d.Body, &rep); err != nil {
		t.Fatalf("reply is not JSON: %v: %s", err, d.Body)
	}
	return rep
}

// TestPanicOutsideHandler: a panic while decoding the arguments, encoding the
// result or formatting the error, and a request whose headers are over their
// bounds, each get an error reply and are acked; the service keeps serving.
func TestPanicOutsideHandler(t *testing.T) {
	const service = "math_panics"
	var calls atomic.Int64
	serve(t, service, 1, func(r *entrypoint.Registry) {
		mathService(&calls)(r)
		rpc.Handle(r, "touchy", func(_ context.Context, in struct {
			V touchy `json:"v"`
		}) (string, error) {
			return string(in.V), nil
		})
		rpc.Handle(r, "explosive", func(context.Context, struct{}) (explosive, error) { return explosive{}, nil })
		rpc.Handle(r, "nil_error", func(context.Context, struct{}) (any, error) {
			var e *nilErr
			return nil, e
		})
	})
	rc := rawDial(t)
	many := amqp091.Table{}
	for i := range contextdata.MaxItems + 1 {
		many[fmt.Sprintf("nameko.k%d", i)] = "v"
	}
	tooMany := amqp091.Table{}
	for i := range worker.MaxHeaders + 1 {
		tooMany[fmt.Sprintf("x-h%d", i)] = "v"
	}
	tests := []struct {
		name, method string
		headers      amqp091.Table
		body         string
		wantType     string
		wantValue    string
	}{
		{"argument decoding panics", "touchy", nil, `{"args": [], "kwargs": {"v": "boom"}}`, "IncorrectSignature", "touchy cannot take boom"},
		{"result encoding panics", "explosive", nil, `{"args": [], "kwargs": {}}`, "Panic", "explosive cannot be encoded"},
		{"typed nil error", "nil_error", nil, `{"args": [], "kwargs": {}}`, "Panic", "nil pointer"},
		{"too many context items", "add", many, `{"args": [1, 2], "kwargs": {}}`, "MalformedRequest", "limit of 64"},
		{"context data too large", "add", amqp091.Table{"nameko.auth_token": strings.Repeat("t", contextdata.MaxSize)},
			`{"args": [1, 2], "kwargs": {}}`, "MalformedRequest", "bytes, over the limit"},
		{"too many headers", "add", tooMany, `{"args": [1, 2], "kwargs": {}}`, "MalformedRequest", "headers, over the limit of 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := publishRaw(t, rc, service+"."+tt.method, tt.headers, []byte(tt.body))
			if rep.Error == nil || rep.Error.ExcType != tt.wantType || !strings.Contains(rep.Error.Value, tt.wantValue) {
				t.Fatalf("reply error %+v, want %s containing %q", rep.Error, tt.wantType, tt.wantValue)
			}
			if strings.Contains(rep.Error.Value, "goroutine") || strings.Contains(rep.Error.Value, ".go:") {
				t.Errorf("the reply carries a stack: %q", rep.Error.Value)
			}
			// One worker, prefetch 1: an unacked request would block this call.
			ctx, cancel := context.WithTimeout(context.Background(), waitBound)
			defer cancel()
			got, err := rpc.Call[float64](ctx, newClient(t, waitBound).Proxy(service), "add", rpc.Args(2, 3))
			if err != nil || got != 5 {
				t.Fatalf("next call: %v, %v", got, err)
			}
		})
	}
	waitQueueEmpty(t, rpc.QueueName(service))
}

// TestClientBounds: a client refuses at once a call over its in-flight bound
// or carrying too much context data.
func TestClientBounds(t *testing.T) {
	const service = "math_bounds"
	serve(t, service, 4, mathService(nil))
	c, err := hyphatest.Client(t, context.Background(), testbroker.URI(t), rpc.Config{Timeout: waitBound, MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := c.Proxy(service)
	ctx := context.Background()
	slow := []*rpc.Reply{
		p.CallAsync(ctx, "sleep", map[string]any{"ms": 500}),
		p.CallAsync(ctx, "sleep", map[string]any{"ms": 500}),
	}
	waitFor(t, func() bool { return c.InFlight() == 2 })
	if _, err := rpc.Call[float64](ctx, p, "add", rpc.Args(1, 2)); !errors.Is(err, rpc.ErrTooManyCalls) {
		t.Fatalf("third call: %v, want ErrTooManyCalls", err)
	}
	for _, r := range slow {
		if err := r.Result(nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := rpc.Call[float64](ctx, p, "add", rpc.Args(1, 2)); err != nil || got != 3 {
		t.Fatalf("call after the slow ones: %v, %v", got, err)
	}
	big := contextdata.With(ctx, contextdata.KeyAuthToken, strings.Repeat("t", contextdata.MaxSize))
	if _, err := rpc.Call[float64](big, p, "add", rpc.Args(1, 2)); err == nil || !strings.Contains(err.Error(), "context data") {
		t.Fatalf("call with too much context data: %v, want an error naming it", err)
	}
}

// waitFor polls cond until it holds, failing t after waitBound.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", waitBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
