package crosslang_test

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
)

func TestNamekoDispatcherReachesHypha(t *testing.T) {
	uri := testbroker.URI(t)
	type received struct {
		order evtOrder
		data  contextdata.Data
	}
	got := make(chan received, 10)
	startApp(t, uri, evtServiceOption("go_listener", func(r *entrypoint.Registry) {
		events.Handle(r, "on_created", "py_orders", "order_created", func(ctx context.Context, o evtOrder) error {
			got <- received{o, contextdata.From(ctx)}
			return nil
		})
	}))

	out := runStandalone(t, uri, "dispatch", "py_orders", "order_created", `{"id": 7, "item": "socks"}`)
	if strings.TrimSpace(out) != "DISPATCHED" {
		t.Fatalf("standalone.py dispatch printed %q, want DISPATCHED", out)
	}
	var r received
	select {
	case r = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("the Hypha handler got no event within 20 s")
	}
	if r.order != (evtOrder{7, "socks"}) {
		t.Errorf("payload = %+v, want {ID:7 Item:socks}", r.order)
	}
	// nameko's standalone dispatcher sends no headers: the handler's worker
	// starts the call-id stack, and there is no other context data.
	stack := contextdata.CallIDStack(contextdata.WithData(context.Background(), r.data))
	if own := regexp.MustCompile(`^go_listener\.on_created\.` + uuidRE + `$`); len(stack) != 1 || !own.MatchString(stack[0]) {
		t.Errorf("call_id_stack = %q, want [go_listener.on_created.<uuid>]", stack)
	}
	for key := range r.data {
		if key != contextdata.KeyCallIDStack {
			t.Errorf("context data has %s = %#v; nameko's standalone dispatcher sent no headers", key, r.data[key])
		}
	}
	select {
	case extra := <-got:
		t.Errorf("the handler got a second event: %+v", extra)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestHyphaDispatchReachesNamekoHandlers(t *testing.T) {
	uri := testbroker.URI(t)
	svc := startNameko(t, uri, "event_service", "PyListener",
		"evt-hy_orders-order_created--py_listener.on_pool",
		"evt-hy_orders-order_created",
		"evt-hy_orders-order_created--py_listener.on_broadcast-*")

	d, err := events.Dial(context.Background(), uri, events.DispatcherConfig{Source: "hy_orders"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := contextdata.With(contextdata.WithUserID(context.Background(), "u-7"), "tenant", "acme")
	payloads := []evtOrder{{1, "socks"}, {2, "shoes"}}
	for _, p := range payloads {
		if err := d.Dispatch(ctx, "order_created", p); err != nil {
			t.Fatalf("dispatch %+v: %v", p, err)
		}
	}

	handlers := []string{"on_pool", "on_singleton", "on_broadcast"}
	type event struct {
		Handler     string         `json:"handler"`
		Payload     evtOrder       `json:"payload"`
		Data        map[string]any `json:"data"`
		CallIDStack []string       `json:"call_id_stack"`
	}
	var evs []event
	deadline := time.Now().Add(30 * time.Second)
	for {
		lines := svc.lines("EVENT ")
		if len(lines) >= len(handlers)*len(payloads) || time.Now().After(deadline) {
			evs = nil
			for _, l := range lines {
				var ev event
				if err := json.Unmarshal([]byte(l), &ev); err != nil {
					t.Fatalf("nameko printed %q: %v", l, err)
				}
				evs = append(evs, ev)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let a duplicate show up, if one is coming.
	time.Sleep(300 * time.Millisecond)
	if n := len(svc.lines("EVENT ")); n != len(handlers)*len(payloads) {
		t.Fatalf("nameko's handlers ran %d times, want %d (each of %v once per event): %+v", n, len(handlers)*len(payloads), handlers, evs)
	}
	dispatchID := regexp.MustCompile(`^hy_orders\.dispatch\.` + uuidRE + `$`)
	for _, h := range handlers {
		var seen []evtOrder
		for _, ev := range evs {
			if ev.Handler != h {
				continue
			}
			seen = append(seen, ev.Payload)
			if ev.Data["user_id"] != "u-7" || ev.Data["tenant"] != "acme" {
				t.Errorf("%s: nameko's context data = %v, want user_id u-7 and tenant acme", h, ev.Data)
			}
			own := regexp.MustCompile(`^py_listener\.` + h + `\.` + uuidRE + `$`)
			if s := ev.CallIDStack; len(s) != 2 || !dispatchID.MatchString(s[0]) || !own.MatchString(s[1]) {
				t.Errorf("%s: call_id_stack = %q, want [hy_orders.dispatch.<uuid> py_listener.%s.<uuid>]", h, s, h)
			}
		}
		if len(seen) != len(payloads) || (seen[0] != payloads[0] && seen[0] != payloads[1]) || seen[0] == seen[1] {
			t.Errorf("%s got %+v, want %+v", h, seen, payloads)
		}
	}
}
