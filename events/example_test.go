package events_test

import (
	"context"
	"fmt"

	"github.com/hypha-go/hypha/events"
)

// A test calls a handler directly with the delivery details a real event
// would carry in its context.
func ExampleWithDelivery() {
	handle := func(ctx context.Context, order string) error {
		if events.Attempt(ctx) > 1 {
			fmt.Println("retrying", events.MessageID(ctx))
		}
		fmt.Println("handled", order)
		return nil
	}
	_ = handle(events.WithDelivery(context.Background(), "msg-7", 2), "socks")
	// Output:
	// retrying msg-7
	// handled socks
}

// recorder is a fake EventDispatcher that prints what it is given.
type recorder struct{}

func (recorder) Dispatch(_ context.Context, eventType string, payload any) error {
	fmt.Println("dispatched", eventType, payload)
	return nil
}

// A service that takes an EventDispatcher can be given a fake in unit tests.
func ExampleEventDispatcher() {
	var d events.EventDispatcher = recorder{}
	_ = d.Dispatch(context.Background(), "order_created", map[string]any{"id": "o-1"})
	// Output: dispatched order_created map[id:o-1]
}
