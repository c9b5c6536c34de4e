package rpc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

// TestReplyKeyPrefixChecked: a ReplyKeyPrefix out of form fails Start before
// it touches the broker, saying what it should
// be; the forms the topic permissions rely on pass.
func TestReplyKeyPrefixChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const uri = "memory://rpc-reply-key-prefix"
	t.Cleanup(func() { memory.Reset("rpc-reply-key-prefix") })
	broker, err := dial.Dial(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	unconnected, err := dial.Dial(ctx, "amqp://127.0.0.1:1/", dial.Lazy())
	if err != nil {
		t.Fatal(err)
	}
	defer unconnected.Close()
	for _, tc := range []struct{ prefix, want string }{
		{"web", "want two or more dot-separated words"},
		{"reply.", "want two or more dot-separated words"},
		{"reply..web", "want two or more dot-separated words"},
		{"reply.*", "want two or more dot-separated words"},
		{"reply.#", "want two or more dot-separated words"},
		{"reply web.x", "want two or more dot-separated words"},
		{"amq.rabbitmq.reply-to", `does not start with "amq."`},
		{strings.Repeat("a", 217) + ".b", "want at most 218 bytes"},
	} {
		// A connection never made shows that Start fails before using it.
		err := rpc.NewClient(unconnected, rpc.Config{ReplyKeyPrefix: tc.prefix}).Start(ctx)
		if err == nil || !strings.Contains(err.Error(), "ReplyKeyPrefix") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start on no connection with ReplyKeyPrefix %q: %v; want %q", tc.prefix, err, tc.want)
		}
		c := rpc.NewClient(broker, rpc.Config{ReplyKeyPrefix: tc.prefix})
		if err := c.Start(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Start with ReplyKeyPrefix %q: %v; want %q", tc.prefix, err, tc.want)
		}
		c.Close()
	}
	for _, prefix := range []string{"reply.web", "a.b.c", "Reply_1.web-2", strings.Repeat("a", 216) + ".b"} {
		c, err := hyphatest.Client(t, ctx, uri, rpc.Config{ReplyKeyPrefix: prefix})
		if err != nil {
			t.Errorf("Dial with ReplyKeyPrefix %q: %v", prefix, err)
			continue
		}
		c.Close()
	}
}
