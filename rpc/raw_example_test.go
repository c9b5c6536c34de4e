package rpc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// A raw method acks a request before its slow work, then answers with JSON
// that any caller, a nameko client included, reads as the call's result.
func ExampleHandleRaw() {
	ctx := context.Background()
	broker, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	r := entrypoint.NewRegistry("uploads_example")
	rpc.HandleRaw(r, "upload", func(ctx context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		if err := reply.Ack(); err != nil { // not delivered again, whatever happens next
			return err
		}
		// req.Body is the request as sent: {"args":["abc"],"kwargs":{}}
		return reply.Reply(fmt.Appendf(nil, `{"stored": %d}`, len(req.Body)), "application/json")
	})
	srv := rpc.NewServer(broker, r, rpc.ServerConfig{Service: "uploads_example"})
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	conn, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{Timeout: 5 * time.Second})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	out, err := rpc.Call[map[string]int](ctx, client.Proxy("uploads_example"), "upload", rpc.Args("abc"))
	fmt.Println(out["stored"], err)
	// Output: 28 <nil>
}
