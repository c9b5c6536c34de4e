package contextdata_test

import (
	"context"
	"fmt"

	"github.com/hypha-go/hypha/contextdata"
)

func Example() {
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	ctx = contextdata.With(ctx, "tenant", "acme")

	// What a request made from ctx carries:
	h := contextdata.Outgoing(ctx, "standalone.1")
	fmt.Println(h["nameko.user_id"], h["nameko.tenant"])

	// What a server makes of the headers it receives:
	got := contextdata.Incoming(context.Background(), h, "svc.method.2", 11)
	fmt.Println(contextdata.UserID(got), contextdata.Get(got, "tenant"))
	// Output:
	// u-42 acme
	// u-42 acme
}

func ExampleCallIDStack() {
	ctx := context.Background()
	for _, id := range []string{"a.x.1", "b.y.2", "c.z.3"} {
		// A hop: the message sent from ctx, received by the worker id.
		ctx = contextdata.Incoming(context.Background(), contextdata.Outgoing(ctx, "root.0"), id, 2) // PARENT_CALLS_TRACKED=1 keeps 2 entries
	}
	fmt.Println(contextdata.CallIDStack(ctx))
	// Output: [b.y.2 c.z.3]
}

func ExampleIncoming() {
	// A caller outside any worker starts the call-id stack with its own id...
	h := contextdata.Outgoing(contextdata.WithUserID(context.Background(), "u-7"), "standalone.1")
	// ...and the worker that receives the message pushes its own.
	ctx := contextdata.Incoming(context.Background(), h, "calculator.add.2", 11)
	fmt.Println(contextdata.UserID(ctx), contextdata.CallIDStack(ctx))
	// Output: u-7 [standalone.1 calculator.add.2]
}
