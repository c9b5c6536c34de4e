package rpc_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// TestRequestWithoutReplyTo: a request without reply_to runs, as nameko's
// protocol allows, but never silently: each is counted through OnNoReplyTo,
// under its method when the service has it and "_OTHER" otherwise (any name
// a sender makes up would be a new series), and a warning is logged, at
// most once a second however many come.
func TestRequestWithoutReplyTo(t *testing.T) {
	const service = "math_noreply"
	logs := &lockedBuffer{}
	var calls atomic.Int64
	var mu sync.Mutex
	var counted []string
	serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(1),
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		OnNoReplyTo: func(method string) {
			mu.Lock()
			defer mu.Unlock()
			counted = append(counted, method)
		}}, mathService(&calls))
	rc := rawDial(t)
	send := func(method, body string) {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		if err := rc.ch.PublishWithContext(ctx, rpc.DefaultExchange, service+"."+method, true, false, amqp091.Publishing{
			ContentType: "application/json", CorrelationId: uuid.NewString(), Body: []byte(body),
		}); err != nil {
			t.Fatal(err)
		}
	}
	send("add", `{"args": [1, 2], "kwargs": {}}`)
	send("add", `not json`)
	send("made_up_"+uuid.NewString()[:8], `{"args": [], "kwargs": {}}`)
	waitQueueEmpty(t, rpc.QueueName(service))
	mu.Lock()
	got := slices.Clone(counted)
	mu.Unlock()
	slices.Sort(got)
	if want := []string{"_OTHER", "add", "add"}; !slices.Equal(got, want) {
		t.Fatalf("counted %q, want %q", got, want)
	}
	if calls.Load() != 1 {
		t.Errorf("the handler ran %d times, want 1", calls.Load())
	}
	if out := logs.String(); strings.Count(out, "without reply_to") != 1 || !strings.Contains(out, "level=WARN") {
		t.Fatalf("want one warning (at most one a second):\n%s", out)
	}
	time.Sleep(time.Second)
	send("add", `{"args": [1, 2], "kwargs": {}}`)
	waitQueueEmpty(t, rpc.QueueName(service))
	if n := strings.Count(logs.String(), "without reply_to"); n != 2 {
		t.Fatalf("%d warnings after a second more, want 2:\n%s", n, logs.String())
	}
}
