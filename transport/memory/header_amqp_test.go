package memory_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// headerCases are header values as Go code writes them.
var headerCases = map[string]any{
	"nil":       nil,
	"bool":      true,
	"int":       42,
	"int-big":   math.MaxInt32 + 1,
	"int-neg":   math.MinInt32 - 1,
	"int8":      int8(-3),
	"uint8":     uint8(200),
	"int16":     int16(-300),
	"uint16":    uint16(60000),
	"int32":     int32(-7),
	"uint32":    uint32(4000000000),
	"int64":     int64(1) << 40,
	"uint":      uint(9),
	"uint64":    uint64(10),
	"float32":   float32(1.5),
	"float64":   2.25,
	"string":    "héllo",
	"bytes":     []byte{0, 1, 2},
	"time":      time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC),
	"strings":   []string{"a", "b"},
	"list":      []any{1, "x", []string{"y"}, map[string]any{"k": int16(1)}},
	"empty":     []any{},
	"map":       map[string]any{"n": 1, "s": "t", "m": map[string]any{"deep": []any{true}}},
	"empty-map": map[string]any{},
}

// TestNormalizeHeadersMatchesRabbitMQ sends each header through RabbitMQ
// with transport/amqp and checks that NormalizeHeaders predicts what comes
// back.
func TestNormalizeHeadersMatchesRabbitMQ(t *testing.T) {
	uri := testbroker.URI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := dial.Dial(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	q := transport.Queue{Name: "headers", Exclusive: true}
	if err := b.DeclareQueue(ctx, q); err != nil {
		t.Fatal(err)
	}
	got := make(chan map[string]any, 1)
	c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: q.Name}, func(d transport.Delivery) {
		_ = d.Ack()
		got <- d.Headers
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, v := range headerCases {
		t.Run(name, func(t *testing.T) {
			h := map[string]any{"v": v}
			want, err := memory.NormalizeHeaders(h)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Publish(ctx, transport.Publishing{RoutingKey: q.Name, Message: transport.Message{Headers: h}}); err != nil {
				t.Fatal(err)
			}
			select {
			case back := <-got:
				if !reflect.DeepEqual(back, want) {
					t.Errorf("through RabbitMQ %s, NormalizeHeaders %s", show(back), show(want))
				}
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		})
	}
}

func show(v any) string {
	switch x := v.(type) {
	case map[string]any:
		s := "map{"
		for k, e := range x {
			s += k + ":" + show(e) + " "
		}
		return fmt.Sprintf("%s}(nil=%v)", s, x == nil)
	case []any:
		s := "["
		for _, e := range x {
			s += show(e) + " "
		}
		return fmt.Sprintf("%s](nil=%v)", s, x == nil)
	}
	return fmt.Sprintf("%T(%v)", v, v)
}
