package memory_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// refusal is one thing no broker can take, the error it gets, and what its
// message names.
type refusal struct {
	name string
	do   func(ctx context.Context, b transport.Broker) error
	want error    // the sentinel it wraps
	says []string // what its message names: the field and the limit
}

const maxBody = 1 << 20

func publishing(p transport.Publishing) func(context.Context, transport.Broker) error {
	return func(ctx context.Context, b transport.Broker) error { return b.Publish(ctx, p) }
}

func headers(h map[string]any) func(context.Context, transport.Broker) error {
	return publishing(transport.Publishing{RoutingKey: "nowhere", Message: transport.Message{Headers: h}})
}

func queue(q transport.Queue) func(context.Context, transport.Broker) error {
	return func(ctx context.Context, b transport.Broker) error { return b.DeclareQueue(ctx, q) }
}

// nest is headers with v inside n tables nested in them.
func nest(n int, v any) map[string]any {
	for range n {
		v = map[string]any{"n": v}
	}
	return map[string]any{"h": v}
}

func entries(n int) map[string]any {
	m := make(map[string]any, n)
	for i := range n {
		m[string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676))] = nil
	}
	return m
}

var (
	long    = strings.Repeat("x", 256)
	notUTF8 = "caf\xe9"
)

// refusals are inputs amqp091-go cannot encode (a short string over 255
// bytes) or RabbitMQ refuses by closing the connection (a name that is not
// UTF-8, a NaN, an unknown exchange kind), and the other bounds of what a
// broker takes.
var refusals = []refusal{
	{"routing key over 255 bytes", publishing(transport.Publishing{RoutingKey: "calculator." + long}),
		transport.ErrInvalid, []string{"routing key", "267 bytes", "255"}},
	{"routing key not UTF-8", publishing(transport.Publishing{RoutingKey: notUTF8}),
		transport.ErrInvalid, []string{"routing key", "UTF-8"}},
	{"exchange over 255 bytes", publishing(transport.Publishing{Exchange: long}),
		transport.ErrInvalid, []string{"exchange", "255"}},
	{"content type", publishing(transport.Publishing{Message: transport.Message{ContentType: long}}),
		transport.ErrInvalid, []string{"content type", "255"}},
	{"content encoding", publishing(transport.Publishing{Message: transport.Message{ContentEncoding: long}}),
		transport.ErrInvalid, []string{"content encoding", "255"}},
	{"correlation id", publishing(transport.Publishing{Message: transport.Message{CorrelationID: long}}),
		transport.ErrInvalid, []string{"correlation id", "255"}},
	{"reply_to", publishing(transport.Publishing{Message: transport.Message{ReplyTo: long}}),
		transport.ErrInvalid, []string{"reply_to", "255"}},
	{"message id", publishing(transport.Publishing{Message: transport.Message{MessageID: long}}),
		transport.ErrInvalid, []string{"message id", "255"}},
	{"expiration over ten years", publishing(transport.Publishing{Message: transport.Message{Expiration: 88000 * time.Hour}}),
		transport.ErrInvalid, []string{"expiration", "87600h"}},
	{"header name", headers(map[string]any{"x-hypha-" + long: 1}),
		transport.ErrInvalid, []string{"header", "x-hypha-x", "264 bytes", "255"}},
	{"nested header name", headers(map[string]any{"t": []any{map[string]any{long: 1}}}),
		transport.ErrInvalid, []string{`header "t" > [0] > "xxx`, "255"}},
	{"NaN", headers(map[string]any{"f": math.NaN()}), transport.ErrInvalid, []string{`header "f"`, "NaN"}},
	{"infinity in a list", headers(map[string]any{"l": []any{1, float32(math.Inf(-1))}}),
		transport.ErrInvalid, []string{`header "l" > [1]`, "-Inf"}},
	{"uint64 over int64", headers(map[string]any{"u": uint64(math.MaxUint64)}),
		transport.ErrInvalid, []string{`header "u"`, "18446744073709551615", "largest integer"}},
	{"type", headers(map[string]any{"c": make(chan int)}), transport.ErrInvalid, []string{`header "c"`, "chan int"}},
	{"typed map", headers(map[string]any{"m": map[string]string{"a": "b"}}),
		transport.ErrInvalid, []string{`header "m"`, "map[string]string"}},
	{"nested 33 deep", headers(nest(33, "leaf")), transport.ErrInvalid, []string{"nested deeper than 32"}},
	{"list of 8193", headers(map[string]any{"l": make([]any, 8193)}),
		transport.ErrInvalid, []string{`header "l"`, "8193 entries", "8192"}},
	{"table of 8193", headers(map[string]any{"t": entries(8193)}),
		transport.ErrInvalid, []string{`header "t"`, "8193 entries", "8192"}},
	{"body", publishing(transport.Publishing{Message: transport.Message{Body: make([]byte, maxBody+1)}}),
		transport.ErrTooLarge, []string{"body", "MAX_MESSAGE_SIZE"}},
	{"headers over the frame size", headers(map[string]any{"pad": strings.Repeat("p", 131072)}),
		transport.ErrTooLarge, []string{"frame size 131072"}},
	{"queue name", queue(transport.Queue{Name: long, AutoDelete: true}),
		transport.ErrInvalid, []string{"queue name", "255"}},
	{"queue name not UTF-8", queue(transport.Queue{Name: notUTF8, AutoDelete: true}),
		transport.ErrInvalid, []string{"queue name", "UTF-8"}},
	{"binding key", queue(transport.Queue{Name: "q", AutoDelete: true,
		Bindings: []transport.Binding{{Exchange: "amq.topic", RoutingKey: long}}}),
		transport.ErrInvalid, []string{"binding key", "255"}},
	{"binding key not UTF-8", queue(transport.Queue{Name: "q", AutoDelete: true,
		Bindings: []transport.Binding{{Exchange: "amq.topic", RoutingKey: notUTF8}}}),
		transport.ErrInvalid, []string{"binding key", "UTF-8"}},
	{"binding's exchange", queue(transport.Queue{Name: "q", AutoDelete: true,
		Bindings: []transport.Binding{{Exchange: long, RoutingKey: "k"}}}),
		transport.ErrInvalid, []string{"binding's exchange", "255"}},
	{"queue argument NaN", queue(transport.Queue{Name: "q", AutoDelete: true, Args: map[string]any{"x-message-ttl": math.NaN()}}),
		transport.ErrInvalid, []string{`queue argument "x-message-ttl"`, "NaN"}},
	{"queue arguments over the frame size", queue(transport.Queue{Name: "q", AutoDelete: true,
		Args: map[string]any{"x-pad": strings.Repeat("p", 131072)}}),
		transport.ErrTooLarge, []string{"frame size"}},
	{"exchange name", func(ctx context.Context, b transport.Broker) error {
		return b.DeclareExchange(ctx, transport.Exchange{Name: long, Kind: transport.Topic, AutoDelete: true})
	}, transport.ErrInvalid, []string{"exchange name", "255"}},
	{"exchange name not UTF-8", func(ctx context.Context, b transport.Broker) error {
		return b.DeclareExchange(ctx, transport.Exchange{Name: notUTF8, Kind: transport.Topic, AutoDelete: true})
	}, transport.ErrInvalid, []string{"exchange name", "UTF-8"}},
	{"exchange kind", func(ctx context.Context, b transport.Broker) error {
		return b.DeclareExchange(ctx, transport.Exchange{Name: "e", Kind: "tpoic", AutoDelete: true})
	}, transport.ErrInvalid, []string{`kind "tpoic"`, "topic"}},
	{"consume queue name", func(ctx context.Context, b transport.Broker) error {
		_, err := b.Consume(ctx, transport.ConsumeOptions{Queue: notUTF8}, func(transport.Delivery) {})
		return err
	}, transport.ErrInvalid, []string{"queue name", "UTF-8"}},
	{"prefetch", func(ctx context.Context, b transport.Broker) error {
		_, err := b.Consume(ctx, transport.ConsumeOptions{Queue: "q", Prefetch: 70000}, func(transport.Delivery) {})
		return err
	}, transport.ErrInvalid, []string{"prefetch 70000", "65535"}},
	{"delete queue name", func(ctx context.Context, b transport.Broker) error { return b.DeleteQueue(ctx, long) },
		transport.ErrInvalid, []string{"queue name", "255"}},
	{"delete queue name not UTF-8", func(ctx context.Context, b transport.Broker) error { return b.DeleteQueue(ctx, notUTF8) },
		transport.ErrInvalid, []string{"queue name", "UTF-8"}},
	{"inspect queue name", func(ctx context.Context, b transport.Broker) error {
		_, err := b.(queueTool).InspectQueue(ctx, long)
		return err
	}, transport.ErrInvalid, []string{"queue name", "255"}},
	{"read queue name not UTF-8", func(ctx context.Context, b transport.Broker) error {
		_, err := b.(queueTool).ReadQueue(ctx, notUTF8)
		return err
	}, transport.ErrInvalid, []string{"queue name", "UTF-8"}},
}

// queueTool is what both brokers offer tools that look into a queue.
type queueTool interface {
	InspectQueue(ctx context.Context, name string) (transport.QueueState, error)
	ReadQueue(ctx context.Context, name string) (transport.QueueReader, error)
}

// accepted are inputs at the bounds, which every broker takes.
var accepted = []refusal{
	{"routing key of 255 bytes", publishing(transport.Publishing{RoutingKey: long[:255]}), nil, nil},
	{"header name of 255 bytes", headers(map[string]any{long[:255]: 1}), nil, nil},
	{"nested 32 deep", headers(nest(32, "leaf")), nil, nil},
	{"list of 8192", headers(map[string]any{"l": make([]any, 8192)}), nil, nil},
	{"table of 8192", headers(map[string]any{"t": entries(8192)}), nil, nil},
	{"expiration of ten years", publishing(transport.Publishing{Message: transport.Message{Expiration: 87600 * time.Hour}}), nil, nil},
	{"every type", headers(map[string]any{"a": []any{nil, true, int8(1), uint8(1), int16(1), uint16(1), int32(1), uint32(1),
		int64(1), 1, math.MaxInt32 + 1, uint(1), uint64(math.MaxInt64), float32(1), 1.5, "s", []byte("b"), time.Unix(1, 0),
		[]string{"x"}, map[string]any{}}}), nil, nil},
	{"body at the limit", publishing(transport.Publishing{Message: transport.Message{Body: make([]byte, maxBody)}}), nil, nil},
}

// TestBrokersRefuseAlike sends each refusal to RabbitMQ and to the embedded
// broker: both fail at once with the same sentinel and a message naming
// the field and its limit; the connection stays up (no reconnect), and a
// good message after it arrives.
func TestBrokersRefuseAlike(t *testing.T) {
	var restores atomic.Int32
	ctx := context.Background()
	s := config.DefaultSettings()
	s.MaxMessageSize = maxBody
	rabbit, err := dial.Dial(ctx, testbroker.URI(t), dial.Settings(s), dial.OnRestore(func() { restores.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	defer rabbit.Close()
	mem, err := memory.Dial(ctx, newURI(t), memory.Options{MaxMessageSize: maxBody})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	for _, b := range []struct {
		name   string
		broker transport.Broker
	}{{"rabbitmq", rabbit}, {"memory", mem}} {
		t.Run(b.name, func(t *testing.T) {
			declare(t, b.broker, transport.Queue{Name: "good", AutoDelete: true})
			got, _ := consume(t, b.broker, "good", 10)
			for _, r := range append(refusals, accepted...) {
				t.Run(r.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
					defer cancel()
					err := r.do(ctx, b.broker)
					switch {
					case r.want == nil && err != nil:
						t.Fatalf("refused: %v", err)
					case r.want != nil && !errors.Is(err, r.want):
						t.Fatalf("got %v, want %v", err, r.want)
					}
					for _, s := range r.says {
						if !strings.Contains(err.Error(), s) {
							t.Errorf("%q does not say %q", err, s)
						}
					}
					send(t, b.broker, "good", r.name)
					d := recv(t, got)
					_ = d.Ack()
					if string(d.Body) != r.name {
						t.Fatalf("got %q", d.Body)
					}
					if n := restores.Load(); n != 0 {
						t.Fatalf("the connection was lost and restored %d times", n)
					}
				})
			}
		})
	}
}
