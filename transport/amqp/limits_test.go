package amqp

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/rawamqp"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp/internal/frame"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

func TestContentHeaderSizeMatchesTheWire(t *testing.T) {
	sizes := make(chan int, 8)
	ch := rawamqp.Channel(t, testbroker.URI(t), func(p []byte) []byte {
		sizes <- len(p)
		return p
	})
	msgs := []transport.Message{
		{},
		{ContentType: "application/json", ContentEncoding: "utf-8", CorrelationID: "c", ReplyTo: "r", MessageID: "m",
			Expiration: 100 * time.Millisecond, Persistent: true},
		{Expiration: time.Microsecond, Headers: map[string]any{
			"s": "x", "b": []byte("yy"), "t": true, "i": 1, "i-big": math.MaxInt32 + 1, "i8": int8(1), "u8": byte(1),
			"i16": int16(1), "u16": uint16(1), "i32": int32(1), "u32": uint32(1), "i64": int64(1), "u": uint(1),
			"u64": uint64(1), "f32": float32(1), "f64": 1.0, "ts": time.Unix(1, 0), "nil": nil,
			"strs": []string{"a", "bc"}, "a": []any{"x", 1, map[string]any{"k": "v"}},
			"tbl": map[string]any{"n": map[string]any{"m": []any{}}}, "empty": map[string]any{},
		}},
	}
	for i, m := range msgs {
		pub, err := publishing(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := ch.Publish("", "nowhere", false, false, pub); err != nil {
			t.Fatal(err)
		}
		want, err := wire.ContentHeaderSize(m)
		if err != nil {
			t.Fatal(err)
		}
		if got := <-sizes; got != want {
			t.Errorf("message %d: %d bytes on the wire, computed %d", i, got, want)
		}
	}
}

func TestPublishOverTheLimitsFailsAndTheConnectionStays(t *testing.T) {
	w := watch(t, "too-large", Options{MaxMessageSize: 1 << 20})
	ctx := context.Background()
	for name, m := range map[string]transport.Message{
		"headers": {Headers: map[string]any{"pad": strings.Repeat("x", defaultFrameSize)}},
		"body":    {Body: make([]byte, 1<<20+1)},
	} {
		err := w.b.Publish(ctx, transport.Publishing{RoutingKey: w.queue, Message: m})
		if !errors.Is(err, transport.ErrTooLarge) {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	// Just under the frame size goes: the fixed part, the delivery mode
	// (always sent) and the table.
	pad := defaultFrameSize - frame.Overhead - frame.FixedHeader - 1 - (4 + 1 + len("pad") + 5)
	err := w.b.Publish(ctx, transport.Publishing{RoutingKey: w.queue,
		Message: transport.Message{Headers: map[string]any{"pad": strings.Repeat("x", pad)}}})
	if err != nil {
		t.Fatal(err)
	}
	if d := w.next(t); d.Malformed != nil || len(d.Headers["pad"].(string)) != pad {
		t.Fatalf("largest header: %v", d.Malformed)
	}
	w.ordinary(t)
}

// TestOversizedBodyIsNotHeld publishes bodies four times MAX_MESSAGE_SIZE
// and checks that they arrive empty and malformed without the consumer's
// memory growing by their size.
func TestOversizedBodyIsNotHeld(t *testing.T) {
	const (
		limit = 8 << 20
		size  = 32 << 20
		count = 3
	)
	queue := "oversized"
	ch := rawamqp.Channel(t, testbroker.URI(t), nil)
	if _, err := ch.QueueDeclare(queue, false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.QueueDelete(queue, false, false, false) })
	body := make([]byte, size)
	for range count {
		if err := ch.Publish("", queue, false, false, amqp091.Publishing{Body: body, ReplyTo: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	body = nil
	before := heap()
	w := watch(t, queue, Options{MaxMessageSize: limit})
	var peak uint64
	for range count {
		d := w.next(t)
		if !errors.Is(d.Malformed, transport.ErrMalformed) || len(d.Body) != 0 || d.ReplyTo != "r" {
			t.Fatalf("Malformed %v, body of %d bytes", d.Malformed, len(d.Body))
		}
		want := fmt.Sprintf("message body of %d bytes is over MAX_MESSAGE_SIZE %d", size, limit)
		if !strings.HasSuffix(d.Malformed.Error(), want) {
			t.Errorf("Malformed = %v", d.Malformed)
		}
		peak = max(peak, heap().HeapAlloc)
	}
	after := heap()
	t.Logf("heap after GC: %.1f MiB before consuming, %.1f MiB at most while consuming %d bodies of %d MiB; %.1f MiB allocated meanwhile",
		mib(before.HeapAlloc), mib(peak), count, size>>20, mib(after.TotalAlloc-before.TotalAlloc))
	if peak > before.HeapAlloc+4<<20 {
		t.Errorf("heap grew from %.1f to %.1f MiB", mib(before.HeapAlloc), mib(peak))
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > size/2 {
		t.Errorf("%.1f MiB allocated while consuming", mib(alloc))
	}
	w.ordinary(t)
}

func heap() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

func TestHeartbeatOffOnTheWire(t *testing.T) {
	for _, tt := range []struct {
		heartbeat time.Duration
		want      string
	}{{-1, "0"}, {7 * time.Second, "7"}} {
		name := fmt.Sprintf("hypha-heartbeat-test-%d", time.Now().UnixNano())
		b, err := Dial(context.Background(), testbroker.URI(t), Options{Heartbeat: tt.heartbeat, Name: name})
		if err != nil {
			t.Fatal(err)
		}
		out, err := testbroker.Rabbitmqctl("list_connections", "-q", "--no-table-headers", "client_properties", "timeout")
		b.Close()
		if err != nil {
			t.Fatal(err, out)
		}
		var timeout string
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, name) {
				fields := strings.Fields(line)
				timeout = fields[len(fields)-1]
			}
		}
		if timeout != tt.want {
			t.Errorf("Heartbeat %v: the broker shows timeout %q, want %s\n%s", tt.heartbeat, timeout, tt.want, out)
		}
	}
}

func TestBadCredentialsFailAtOnce(t *testing.T) {
	uri := strings.Replace(testbroker.URI(t), "guest:guest", "guest:wrong", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Dial(ctx, uri, Options{})
	// RabbitMQ takes about 3 s to refuse a login, more on a loaded machine;
	// a dial that retried the refusal would go on until the 20 s context
	// ends, so "at once" is anything well short of that.
	var amqpErr *amqp091.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.AccessRefused || time.Since(start) > 15*time.Second {
		t.Fatalf("after %v: %v, want AccessRefused at once, not retried until the context ends", time.Since(start), err)
	}
}
