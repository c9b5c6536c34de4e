package wire

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// rpcRequest is a request as the RPC client sends one.
var rpcRequest = transport.Publishing{Exchange: "nameko-rpc", RoutingKey: "calculator.add", Mandatory: true,
	Message: transport.Message{
		Body: []byte(`{"args": [1, 2], "kwargs": {}}`), ContentType: "application/json", ContentEncoding: "utf-8",
		CorrelationID: "9f1c2b8e-0d6e-4f5a-9b43-2f1e7c6d5a4b", ReplyTo: "rpc.reply-9f1c2b8e-0d6e-4f5a-9b43-2f1e7c6d5a4b",
		MessageID: "0d6e4f5a-9b43-2f1e-7c6d-5a4b9f1c2b8e", Persistent: true, Expiration: 30 * time.Second,
		Headers: map[string]any{
			"nameko.call_id_stack": []string{"gateway.GET_/calculator/{op}.1c2b8e0d"},
			"nameko.user_id":       "u-42", "x-hypha-deadline": int64(1765130000000),
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
	}}

func TestPathNamesWhereTheValueIs(t *testing.T) {
	deep := map[string]any{"leaf": 1.5}
	for range 15 { // 31 tables and lists, with the innermost
		deep = map[string]any{"n": []any{deep}}
	}
	for _, tc := range []struct {
		h    map[string]any
		want string
	}{
		{map[string]any{"a": map[string]any{"b": []any{1, make(chan int)}}}, `header "a" > "b" > [1]: a value of type chan int`},
		{map[string]any{"k": map[string]any{strings.Repeat("x", 300): 1}}, `header "k" > "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"…: the name is 300 bytes`},
		{map[string]any{"d": deep, "f": nil}, ``},
		{map[string]any{"d": map[string]any{"n": []any{deep}}, "f": nil}, `header "d" > "n" > [0] > … > [0] > "n" > [0]: tables and lists are nested deeper than 32`},
	} {
		_, err := ContentHeaderSize(transport.Message{Headers: tc.h})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("refused: %v", err)
		case tc.want != "" && (!errors.Is(err, transport.ErrInvalid) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}

func TestQuoteCutsOnlyWhatIsOverTheLimit(t *testing.T) {
	if got := Quote(strings.Repeat("k", 255)); got != `"`+strings.Repeat("k", 255)+`"` {
		t.Errorf("255 bytes: %s", got)
	}
	if got := Quote(strings.Repeat("k", 256)); got != `"`+strings.Repeat("k", 40)+`"…` {
		t.Errorf("256 bytes: %s", got)
	}
}

// BenchmarkPublishing checks an RPC request as the client sends it: what
// every publish pays for the check.
func BenchmarkPublishing(b *testing.B) {
	lim := Limits{MaxMessageSize: 8 << 20, FrameSize: DefaultFrameSize}
	b.ReportAllocs()
	for b.Loop() {
		if err := lim.Publishing(rpcRequest); err != nil {
			b.Fatal(err)
		}
	}
}
