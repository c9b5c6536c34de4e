package contextdata_test

import (
	"context"
	"fmt"

	"github.com/hypha-go/hypha/contextdata"
)

// Context data set on a caller's context is what the handler downstream
// reads from its own, one hop on, with the call-id stack grown by the hop.
func ExampleWith() {
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	ctx = contextdata.With(ctx, contextdata.KeyLanguage, "en-gb")
	ctx = contextdata.With(ctx, "tenant", "acme") // custom keys too

	// The call crosses the wire: headers out of the caller's ctx, into the handler's.
	headers := contextdata.Outgoing(ctx, "standalone_rpc_proxy.call.1")
	ctx = contextdata.Incoming(context.Background(), headers, "user_service.calculate_user_score.2", 11)

	// In the handler downstream:
	fmt.Println(contextdata.UserID(ctx))
	fmt.Println(contextdata.String(ctx, contextdata.KeyLanguage))
	fmt.Println(contextdata.Get(ctx, "tenant"))
	fmt.Println(contextdata.CallIDStack(ctx))
	// Output:
	// u-42
	// en-gb
	// acme
	// [standalone_rpc_proxy.call.1 user_service.calculate_user_score.2]
}
