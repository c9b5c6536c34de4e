package mailer_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// records keeps the log records of a test, with their own attributes (not
// the logger's): a slog.Handler for framework.Logger.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count returns how many info records have the attributes handler=handler
// and order_id=orderID, and their messages.
func (r *records) count(handler, orderID string) (int, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var msgs []string
	for _, rec := range r.got {
		attrs := map[string]string{}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		if rec.Level == slog.LevelInfo && attrs["handler"] == handler && attrs["order_id"] == orderID {
			msgs = append(msgs, rec.Message)
		}
	}
	return len(msgs), msgs
}

// TestOrderCreatedReachesMailer runs orders and mailer in one app on the
// embedded broker: an order made through create_order is dispatched as
// order_created, confirmed once by send_confirmation (and visible through
// mailer.sent()) and audited once.
func TestOrderCreatedReachesMailer(t *testing.T) {
	logs := &records{}
	app := hyphatest.Start(t,
		framework.Logger(slog.New(logs)),
		framework.Service(orders.Name, orders.New),
		framework.Service(mailer.Name, mailer.New),
	)
	confirmed := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	audited := hyphatest.Waiter(t, app, mailer.Name, "audit")
	ctx := context.Background()

	o, err := rpc.Call[orders.Order](ctx, app.Proxy(orders.Name), "create_order", map[string]any{"item": "socks", "quantity": 2})
	if err != nil {
		t.Fatal(err)
	}
	if o.ID == "" || o.Item != "socks" || o.Quantity != 2 {
		t.Fatalf("create_order = %+v", o)
	}
	if _, err := confirmed.Wait(5 * time.Second); err != nil {
		t.Fatal("send_confirmation:", err)
	}
	if _, err := audited.Wait(5 * time.Second); err != nil {
		t.Fatal("audit:", err)
	}
	want := mailer.Confirmation{OrderID: o.ID, Item: "socks", Quantity: 2, Text: "Your order of 2 × socks is confirmed."}
	sent, err := rpc.Call[[]mailer.Confirmation](ctx, app.Proxy(mailer.Name), "sent", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0] != want {
		t.Errorf("mailer.sent() = %+v, want exactly %+v", sent, want)
	}
	time.Sleep(200 * time.Millisecond) // room for a duplicate run to show up
	if n, msgs := logs.count("send_confirmation", o.ID); n != 1 ||
		msgs[0] != "sending confirmation for order "+o.ID+" (2 × socks)" {
		t.Errorf("send_confirmation logged %d times: %q; want once", n, msgs)
	}
	if n, msgs := logs.count("audit", o.ID); n != 1 {
		t.Errorf("audit logged %d times: %q; want once", n, msgs)
	}
}

// TestSendConfirmationAlone runs send_confirmation by itself and hands it an
// event directly, as the orders service would dispatch it.
func TestSendConfirmationAlone(t *testing.T) {
	app := hyphatest.Start(t, framework.Service(mailer.Name, mailer.New,
		framework.RestrictEntrypoints("send_confirmation")))
	confirmed := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	if err := app.Dispatch(context.Background(), mailer.Source, mailer.EventType, mailer.Order{ID: "o-9", Item: "hat", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := confirmed.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// TestSendConfirmationDropsDuplicates: a redelivered event confirms nothing twice.
func TestSendConfirmationDropsDuplicates(t *testing.T) {
	logs := &records{}
	m := mailer.New(slog.New(logs))
	ctx := context.Background()
	for _, o := range []mailer.Order{{ID: "a", Item: "socks", Quantity: 2}, {ID: "a", Item: "socks", Quantity: 2}, {ID: "b", Item: "hat", Quantity: 1}} {
		if err := m.SendConfirmation(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	sent, _ := m.Sent(ctx, mailer.SentIn{})
	if len(sent) != 2 || sent[0].OrderID != "a" || sent[1].OrderID != "b" {
		t.Fatalf("sent = %+v", sent)
	}
	if _, msgs := logs.count("send_confirmation", "a"); len(msgs) != 2 || !strings.Contains(msgs[1], "duplicate") {
		t.Fatalf("log = %q", msgs)
	}
}

// TestSentKeepsTheLast checks the memory is bounded to mailer.Keep, newest last.
func TestSentKeepsTheLast(t *testing.T) {
	m := mailer.New(slog.New(&records{}))
	ctx := context.Background()
	if sent, _ := m.Sent(ctx, mailer.SentIn{}); sent == nil || len(sent) != 0 {
		t.Fatalf("sent before any order = %#v, want an empty list", sent)
	}
	for i := range mailer.Keep + 5 {
		_ = m.SendConfirmation(ctx, mailer.Order{ID: fmt.Sprint(i), Item: "socks", Quantity: 1})
	}
	sent, _ := m.Sent(ctx, mailer.SentIn{})
	if len(sent) != mailer.Keep || sent[0].OrderID != "5" || sent[len(sent)-1].OrderID != fmt.Sprint(mailer.Keep+4) {
		t.Fatalf("sent holds %d, first %q, last %q", len(sent), sent[0].OrderID, sent[len(sent)-1].OrderID)
	}
}
