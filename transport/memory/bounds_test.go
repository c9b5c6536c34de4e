package memory_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/transport"
)

// TestBoundsAsAMQPHasThem: the embedded broker refuses, with an error
// naming it, what RabbitMQ or AMQP itself would refuse: a TTL or expiry
// time.Duration cannot hold, a prefetch AMQP's 16 bits cannot carry (names
// and keys: TestBrokersRefuseAlike).
func TestBoundsAsAMQPHasThem(t *testing.T) {
	b := connect(t, newURI(t))
	ctx := context.Background()
	exchange(t, b, "ex", transport.Topic)
	declare(t, b, transport.Queue{Name: "q"})
	for _, tc := range []struct {
		name string
		err  error
		says string
	}{
		{"x-message-ttl", b.DeclareQueue(ctx, transport.Queue{Name: "q3", Args: map[string]any{"x-message-ttl": int64(1 << 62)}}),
			"x-message-ttl"},
		{"x-expires", b.DeclareQueue(ctx, transport.Queue{Name: "q4", Args: map[string]any{"x-expires": int64(1 << 62)}}),
			"x-expires"},
		{"prefetch over 16 bits", consumeErr(b, transport.ConsumeOptions{Queue: "q", Prefetch: 70000}), "prefetch 70000"},
		{"negative prefetch", consumeErr(b, transport.ConsumeOptions{Queue: "q", Prefetch: -1}), "prefetch -1"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.says) {
			t.Errorf("%s: err = %v; want an error saying %q", tc.name, tc.err, tc.says)
		}
	}
}

func consumeErr(b transport.Broker, opts transport.ConsumeOptions) error {
	c, err := b.Consume(context.Background(), opts, func(transport.Delivery) {})
	if err == nil {
		c.Close()
	}
	return err
}
