package rpc_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// TestRepliesFollowTheRequestsDeliveryMode: a server answers a persistent
// request persistently and a transient one transiently, and a client made
// with Transient calls as usual.
func TestRepliesFollowTheRequestsDeliveryMode(t *testing.T) {
	const service = "math_transient"
	serve(t, service, 2, mathService(nil))
	rc := rawDial(t)
	for _, mode := range []uint8{amqp091.Transient, amqp091.Persistent} {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		corr := uuid.NewString()
		if err := rc.ch.PublishWithContext(ctx, rpc.DefaultExchange, service+".add", true, false, amqp091.Publishing{
			ContentType: "application/json", DeliveryMode: mode, CorrelationId: corr, ReplyTo: rc.replyKey,
			Body: []byte(`{"args": [1, 2], "kwargs": {}}`),
		}); err != nil {
			t.Fatal(err)
		}
		if d := waitReply(t, rc.replies, corr); d.DeliveryMode != mode {
			t.Errorf("request in delivery mode %d got its reply in mode %d", mode, d.DeliveryMode)
		}
	}
	c, err := hyphatest.Client(t, context.Background(), testbroker.URI(t), rpc.Config{Timeout: waitBound, Transient: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := rpc.Call[float64](context.Background(), c.Proxy(service), "add", rpc.Args(2, 3)); err != nil || got != 5 {
		t.Fatalf("transient call: %v, %v", got, err)
	}
}
