package contextdata_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/internal/ctxwire"
)

// FuzzHeaders builds AMQP headers from fuzzed strings and numbers and checks
// the round trip through FromHeaders, Headers, Incoming and Outgoing.
func FuzzHeaders(f *testing.F) {
	f.Add("user_id", "u-42", "x-hypha-deadline", int64(1700000000000), "svc.m.1", uint8(11), uint16(3))
	f.Add("", "", "nameko.", int64(0), "", uint8(0), uint16(0))
	f.Add("nameko.language", "en-gb", "traceparent", int64(3000000000), "standalone_rpc_client.a.b", uint8(1), uint16(40))
	f.Add("call_id_stack", "not a list", "nameko.nameko.x", int64(-1), "\xff\xfe", uint8(2), uint16(12))
	f.Add("call_id_stack", "[]", "nameko.call_id_stack", int64(1), "s.m.id", uint8(11), uint16(8193))
	f.Add("tenant\u0000[{\"", "\u00e9\xed\xa0\x80", "NAMEKO.user_id", int64(-3000000000), "a.b.c", uint8(255), uint16(255))
	f.Fuzz(func(t *testing.T, key, value, plainKey string, n int64, callID string, limit uint8, depth uint16) {
		stack := make([]any, 0, depth)
		for i := range int(depth) {
			stack = append(stack, callID+"."+strings.Repeat("x", i%5))
		}
		headers := map[string]any{
			ctxwire.Prefix + key:                        value,
			ctxwire.Prefix + "number":                   n,
			ctxwire.Prefix + "nil":                      nil,
			ctxwire.Prefix + "list":                     []any{value, n, nil},
			ctxwire.Prefix + "map":                      map[string]any{key: value},
			ctxwire.Prefix + contextdata.KeyCallIDStack: stack,
			plainKey: value,
			key:      n,
		}

		d := ctxwire.FromHeaders(headers)
		for k, v := range d {
			hv, ok := headers[ctxwire.Prefix+k]
			if k == "" || !ok || v == nil || !reflect.DeepEqual(v, hv) {
				t.Fatalf("FromHeaders(%#v) has %q = %#v, which no nameko.%s header carries", headers, k, v, k)
			}
		}
		for h, v := range headers {
			if k, ok := strings.CutPrefix(h, ctxwire.Prefix); ok && k != "" && v != nil && !reflected(k) {
				if _, kept := d[k]; !kept {
					t.Fatalf("FromHeaders(%#v) dropped header %q", headers, h)
				}
			}
		}
		if back := ctxwire.FromHeaders(ctxwire.Headers(d)); !reflect.DeepEqual(back, d) {
			t.Fatalf("FromHeaders(Headers(%#v)) = %#v", d, back)
		}

		ctx := contextdata.Incoming(context.Background(), headers, callID, int(limit))
		got := contextdata.CallIDStack(ctx)
		want := append(contextdata.CallIDStack(contextdata.WithData(context.Background(), d)), clip(callID))
		keep := int(limit)
		if keep == 0 || keep > contextdata.MaxCallIDs {
			keep = contextdata.MaxCallIDs
		}
		if len(want) > keep {
			want = want[len(want)-keep:]
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Incoming with call id %q and limit %d: stack %q, want %q", callID, limit, got, want)
		}
		data := contextdata.From(ctx)
		for k, v := range d {
			if k != contextdata.KeyCallIDStack && !reflect.DeepEqual(data[k], v) {
				t.Fatalf("Incoming: context has %q = %#v, the headers %#v", k, data[k], v)
			}
		}

		out := contextdata.Outgoing(ctx, "root."+callID)
		for h := range out {
			if !strings.HasPrefix(h, ctxwire.Prefix) {
				t.Fatalf("Outgoing sends header %q without the %q prefix", h, ctxwire.Prefix)
			}
		}
		if back := ctxwire.FromHeaders(out); !reflect.DeepEqual(map[string]any(back), map[string]any(data)) {
			t.Fatalf("Outgoing(%#v) decodes as %#v", data, back)
		}
		root := contextdata.Outgoing(context.Background(), "root."+callID)
		// Accepted here, sendable on: what a worker adds never takes the
		// context data out of bounds.
		if err := ctxwire.Check(headers); err == nil {
			if err := ctxwire.Check(out); err != nil {
				t.Fatalf("Check accepts %#v, but not what a worker sends on from it, %#v: %v", headers, out, err)
			}
		}
		if s := contextdata.CallIDStack(contextdata.WithData(context.Background(), ctxwire.FromHeaders(root))); len(s) != 1 || s[0] != clip("root."+callID) {
			t.Fatalf("Outgoing outside a worker: stack %q, want just the root id", s)
		}
	})
}

// reflected reports whether key is one of Hypha's own headers as a nameko
// service sends it back: not context data.
func reflected(key string) bool {
	return key == "traceparent" || key == "tracestate" || key == "baggage" || strings.HasPrefix(key, "x-hypha-")
}

// clip is a call id as the stack keeps it: its last MaxCallIDSize bytes,
// from a character's start.
func clip(id string) string {
	if len(id) <= contextdata.MaxCallIDSize {
		return id
	}
	id = id[len(id)-contextdata.MaxCallIDSize:]
	for id != "" && !utf8.RuneStart(id[0]) {
		id = id[1:]
	}
	return id
}
