package orders_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// TestCreateOrderDispatches builds the service by hand with a fake dispatcher.
func TestCreateOrderDispatches(t *testing.T) {
	sent := &hyphatest.FakeDispatcher{}
	s := orders.New(sent, quiet)
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	o, err := s.CreateOrder(ctx, orders.CreateIn{Item: "socks", Quantity: 2})
	if err != nil || o.ID == "" || o.Item != "socks" || o.Quantity != 2 {
		t.Fatalf("CreateOrder = %+v, %v", o, err)
	}
	evs := sent.Events()
	if len(evs) != 1 || evs[0].Type != orders.EventOrderCreated || evs[0].Data["user_id"] != "u-42" {
		t.Fatalf("events = %+v", evs)
	}
	var payload orders.Order
	if err := evs[0].Decode(&payload); err != nil || payload != o {
		t.Fatalf("payload = %+v, %v; want %+v", payload, err, o)
	}
}

// TestNoOrderWithoutItsEvent: when the event cannot be dispatched, the
// caller gets that error, not an order.
func TestNoOrderWithoutItsEvent(t *testing.T) {
	down := errors.New("broker unreachable")
	s := orders.New((&hyphatest.FakeDispatcher{}).FailWith(down), quiet)
	if o, err := s.CreateOrder(context.Background(), orders.CreateIn{Item: "socks", Quantity: 1}); !errors.Is(err, down) {
		t.Fatalf("CreateOrder = %+v, %v; want the dispatch error", o, err)
	}
}

// TestCreateOrderOverTheBroker runs the service on the embedded broker with
// its dispatcher faked, and checks the expected error crosses the wire.
func TestCreateOrderOverTheBroker(t *testing.T) {
	sent := &hyphatest.FakeDispatcher{}
	app := hyphatest.Start(t, framework.Service(orders.Name, orders.New, hyphatest.ReplaceDispatcher(sent)))
	create := hyphatest.Hook(t, app, orders.Name, "create_order")
	var o orders.Order
	if err := create(context.Background(), rpc.Args("socks", 2), &o); err != nil || o.Quantity != 2 {
		t.Fatalf("create_order = %+v, %v", o, err)
	}
	if n := len(sent.Events()); n != 1 {
		t.Fatalf("%d events dispatched, want 1", n)
	}
	for _, in := range []orders.CreateIn{{Item: "", Quantity: 1}, {Item: "socks", Quantity: 0}} {
		if err := create(context.Background(), in, nil); !errors.Is(err, orders.ErrInvalidOrder) {
			t.Errorf("create_order(%+v) = %v, want ErrInvalidOrder", in, err)
		}
	}
}
