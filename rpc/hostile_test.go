package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// TestHostileInputThroughTheBroker sends, through RabbitMQ, each input that
// used to stop a service (headers amqp091-go cannot read, a body over
// MAX_MESSAGE_SIZE, more headers than a service takes) and checks that the
// caller gets an answer and the next ordinary call is answered too.
func TestHostileInputThroughTheBroker(t *testing.T) {
	const service = "math_hostile"
	const big = 3000000000
	const maxMessage = 1 << 20
	ctx := context.Background()
	broker, err := dial.Dial(ctx, testbroker.URI(t), dial.Name(service), maxMessageSize(maxMessage))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	reg := entrypoint.NewRegistry(service)
	mathService(nil)(reg)
	rpc.Handle(reg, "whoami", func(ctx context.Context, _ struct{}) (any, error) {
		return contextdata.Get(ctx, contextdata.KeyUserID), nil
	})
	srv := rpc.NewServer(broker, reg, rpc.ServerConfig{Service: service, Pool: worker.NewPool(1)})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	}()

	deep := amqp091.Table{"leaf": "x"}
	for range 33 {
		deep = amqp091.Table{"n": deep}
	}
	wide := amqp091.Table{}
	for range 8193 {
		wide[uuid.NewString()[:12]] = nil
	}
	headers8192 := amqp091.Table{} // short keys, empty values: within frame_max
	for i := range 8192 {
		headers8192[fmt.Sprintf("%05d", i)] = nil
	}
	// The content header's payload: 14 fixed bytes, then content type,
	// the table {"pad": <n bytes>}, delivery mode, correlation id, reply-to:
	// n is chosen for a frame 4 bytes under frame_max, which RabbitMQ
	// passes on and amqp091-go refuses.
	nearFrameMax := 131072 - 4 - 14 - (1 + 16) - (4 + 1 + 3 + 1 + 4) - 1 - (1 + 36) - (1 + 36)
	small := []byte(`{"args": [1, 2], "kwargs": {}}`)

	rc := rawDial(t)
	ch := rawamqp.Channel(t, testbroker.URI(t), rawamqp.Flip(rawamqp.Int64Field(big), 'L'))
	tests := []struct {
		name    string
		method  string
		headers amqp091.Table
		body    []byte
		want    string // the result, or the error's exc_type
		value   string // part of the error's value
	}{
		{"user id typed L", "whoami", amqp091.Table{"nameko.user_id": int64(big)}, []byte(`{"args": [], "kwargs": {}}`), "3000000000", ""},
		{"L nested in a header", "add", amqp091.Table{"x-t": amqp091.Table{"d": int64(big)}, "x-a": []any{int64(big)}}, small, "3", ""},
		{"table over 8192 entries", "add", wide, small, "MalformedRequest", "over 8192 entries"},
		{"array over 8192 entries", "add", amqp091.Table{"a": make([]any, 8193)}, small, "MalformedRequest", "over 8192 entries"},
		{"nested over 32 deep", "add", deep, small, "MalformedRequest", "nested over 32"},
		{"header frame near frame_max", "add", amqp091.Table{"pad": strings.Repeat("p", nearFrameMax)}, small, "MalformedRequest", "frame size"},
		{"8192 headers", "add", headers8192, small, "MalformedRequest", "over the limit of 256"},
		{"body over MAX_MESSAGE_SIZE", "add", nil, bytes.Repeat([]byte(" "), 32<<20), "MalformedRequest", "MAX_MESSAGE_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pctx, cancel := context.WithTimeout(ctx, waitBound)
			defer cancel()
			corr := uuid.NewString()
			err := ch.PublishWithContext(pctx, rpc.DefaultExchange, service+"."+tt.method, false, false, amqp091.Publishing{
				ContentType: "application/json", Headers: tt.headers, DeliveryMode: amqp091.Persistent,
				CorrelationId: corr, ReplyTo: rc.replyKey, Body: tt.body,
			})
			if err != nil {
				t.Fatal(err)
			}
			var rep wireReply
			d := waitReply(t, rc.replies, corr)
			if err := json.Unmarshal(d.Body, &rep); err != nil {
				t.Fatalf("reply %s: %v", d.Body, err)
			}
			switch {
			case tt.value == "" && (rep.Error != nil || string(rep.Result) != tt.want):
				t.Fatalf("reply %s, want result %s", d.Body, tt.want)
			case tt.value != "" && (rep.Error == nil || rep.Error.ExcType != tt.want || !strings.Contains(rep.Error.Value, tt.value)):
				t.Fatalf("reply %s, want %s saying %q", d.Body, tt.want, tt.value)
			}
			cctx, ccancel := context.WithTimeout(ctx, waitBound)
			defer ccancel()
			if got, err := rpc.Call[float64](cctx, newClient(t, waitBound).Proxy(service), "add", rpc.Args(2, 3)); err != nil || got != 5 {
				t.Fatalf("next call: %v, %v", got, err)
			}
		})
	}
	waitQueueEmpty(t, rpc.QueueName(service))
}
