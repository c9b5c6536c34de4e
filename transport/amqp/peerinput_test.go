package amqp

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
)

// TestExpirationFromAPeer: a message's expiration text is read as a budget
// only when it is one; nothing a peer sends overflows into a negative or
// wrapped-around budget.
func TestExpirationFromAPeer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"0", 0}, {"1500", 1500 * time.Millisecond}, {"-5", 0}, {"12abc", 0}, {" 15", 0}, {"1e3", 0},
		{"9223372036854775807", maxExpiration}, {"99999999999999999999", maxExpiration},
		{"-99999999999999999999", 0}, {"9223372036855", maxExpiration},
	} {
		if got := expiration(tc.in); got != tc.want {
			t.Errorf("expiration(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestPrefetchAMQPCannotCarry: a prefetch basic.qos's 16 bits cannot carry
// is refused, naming it, rather than wrapped around to a small one (70000
// would be 4464), and a negative one rather than taken as unbounded.
func TestPrefetchAMQPCannotCarry(t *testing.T) {
	ctx := context.Background()
	b, err := Dial(ctx, testbroker.URI(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.DeclareQueue(ctx, transport.Queue{Name: "prefetch_bounds"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{70000, -1} {
		c, err := b.Consume(ctx, transport.ConsumeOptions{Queue: "prefetch_bounds", Prefetch: n}, func(transport.Delivery) {})
		if err == nil {
			c.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "prefetch") || !strings.Contains(err.Error(), "65535") {
			t.Errorf("prefetch %d: err = %v; want it refused, naming the limit", n, err)
		}
	}
}
