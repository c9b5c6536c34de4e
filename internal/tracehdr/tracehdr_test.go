package tracehdr_test

import (
	"maps"
	"testing"

	"github.com/hypha-go/hypha/internal/tracehdr"
)

func TestReceivedTrace(t *testing.T) {
	const (
		own       = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		forwarded = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	for _, tc := range []struct {
		name    string
		headers map[string]any
		want    map[string]any
	}{
		{"its own trace",
			map[string]any{"traceparent": own, "tracestate": "a=1", "nameko.traceparent": forwarded},
			map[string]any{"traceparent": own, "tracestate": "a=1", "nameko.traceparent": forwarded}},
		{"its own trace, never mixed with a forwarded state",
			map[string]any{"traceparent": own, "nameko.tracestate": "b=2"},
			map[string]any{"traceparent": own, "nameko.tracestate": "b=2"}},
		{"forwarded by nameko",
			map[string]any{"nameko.traceparent": forwarded, "nameko.tracestate": "b=2", "nameko.baggage": "k=v",
				"nameko.user_id": "u", "nameko.x-hypha-deadline": int64(5)},
			map[string]any{"traceparent": forwarded, "tracestate": "b=2", "baggage": "k=v"}},
		{"forwarded as bytes, as py-amqp may send them",
			map[string]any{"nameko.traceparent": []byte(forwarded)},
			map[string]any{"traceparent": []byte(forwarded)}},
		{"none", map[string]any{"nameko.user_id": "u"}, map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tracehdr.ReceivedTrace(tc.headers)
			if !maps.EqualFunc(map[string]any(got), tc.want, func(a, b any) bool {
				ab, aok := a.([]byte)
				bb, bok := b.([]byte)
				if aok || bok {
					return aok && bok && string(ab) == string(bb)
				}
				return a == b
			}) {
				t.Fatalf("ReceivedTrace(%v) = %v, want %v", tc.headers, got, tc.want)
			}
			if got.Get("traceparent") != tracehdr.HeaderCarrier(tc.want).Get("traceparent") {
				t.Fatalf("traceparent %q", got.Get("traceparent"))
			}
		})
	}
}
