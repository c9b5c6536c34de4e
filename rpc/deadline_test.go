package rpc_test

import (
	"context"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// TestDeadlineHeaderOfEveryType: x-hypha-deadline is read alike whatever
// number type it arrives as. A value no caller could mean (NaN, ±Inf, 1e300,
// int64's largest, zero, negative, not a number) is no deadline: the call
// runs; a real deadline already past drops the call, whatever its type.
func TestDeadlineHeaderOfEveryType(t *testing.T) {
	const service = "math_deadlines"
	var expired atomic.Int32
	serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(2),
		OnExpired: func(string) { expired.Add(1) }}, mathService(nil))
	rc := rawDial(t)
	send := func(deadline any) string {
		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		corr := uuid.NewString()
		if err := rc.ch.PublishWithContext(ctx, rpc.DefaultExchange, service+".add", true, false, amqp091.Publishing{
			ContentType: "application/json", CorrelationId: corr, ReplyTo: rc.replyKey,
			Headers: amqp091.Table{"x-hypha-deadline": deadline}, Body: []byte(`{"args": [1, 2], "kwargs": {}}`),
		}); err != nil {
			t.Fatal(err)
		}
		return corr
	}
	// RabbitMQ closes the channel on a NaN or an infinity: TestHeaderDeadline
	// has those.
	for _, v := range []any{1e300, -1e300, int64(math.MaxInt64), float64(math.MaxInt64), int64(math.MinInt64),
		"9223372036854775807", "1e300", "NaN", int64(0), int64(-1), int32(-5), -1.5, "soon", float32(3e38)} {
		corr := send(v)
		if d := waitReply(t, rc.replies, corr); !strings.Contains(strings.ReplaceAll(string(d.Body), " ", ""), `"result":3`) {
			t.Errorf("x-hypha-deadline %T %v: reply %s; want the call to run, as one without a deadline", v, v, d.Body)
		}
	}
	if n := expired.Load(); n != 0 {
		t.Fatalf("%d calls dropped as expired, want none", n)
	}
	past := time.Now().Add(-time.Minute).UnixMilli()
	for _, v := range []any{past, float64(past), strconv.FormatInt(past, 10)} {
		send(v)
	}
	deadline := time.Now().Add(waitBound)
	for expired.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := expired.Load(); n != 3 {
		t.Fatalf("%d of 3 calls past their deadline dropped, want every one, whatever its type", n)
	}
}
