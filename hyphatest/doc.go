// Package hyphatest is the test kit for Hypha services, in the spirit of
// nameko.testing: it runs services on the embedded broker (no RabbitMQ
// needed), replaces their dependencies with fakes, calls their entrypoints
// and waits for them to run. It needs only a TB (a *testing.T or
// *testing.B).
//
//   - Start runs services on "memory://<test name>-<n>", a broker of the
//     test's own, or on the broker HYPHA_TEST_AMQP_URI names, and stops them when
//     the test ends; App.Proxy calls them and App.Dispatch dispatches
//     events to them.
//   - ReplaceProxy and ReplaceDispatcher, options of framework.Service,
//     give a service a FakeProxy or FakeDispatcher (nameko's
//     replace_dependencies). Without an app, a service built by hand takes
//     the same fakes (nameko's worker_factory): its dependencies are
//     rpc.Caller and events.EventDispatcher values.
//   - Hook calls one RPC method through the broker with the context data
//     of its context (nameko's entrypoint_hook).
//   - Waiter waits until an RPC method or event handler has run, failing
//     the test after a timeout (nameko's entrypoint_waiter).
//   - framework.RestrictEntrypoints runs only some of a service's
//     entrypoints (nameko's restrict_entrypoints).
//   - Run runs an app on a broker the test chooses, with nothing of the
//     kit's added; Client and Dispatcher call and dispatch on a connection
//     of their own, as programs outside the app do.
//
// A complete test of the users example, with its calculator faked:
//
//	func TestCalculateUserScore(t *testing.T) {
//		calc := hyphatest.NewFakeProxy(calculator.Name).Answer("multiply", 30)
//		app := hyphatest.Start(t,
//			framework.Service(users.Name, users.New, hyphatest.ReplaceProxy(calculator.Name, calc)))
//		score := hyphatest.Hook(t, app, users.Name, "calculate_user_score")
//
//		ctx := contextdata.WithUserID(context.Background(), "u-42")
//		var got users.Score
//		if err := score(ctx, users.ScoreIn{UserID: "ann", BaseScore: 10, Multiplier: 3}, &got); err != nil {
//			t.Fatal(err)
//		}
//		if got.Score != 30 {
//			t.Errorf("score = %v, want 30", got.Score)
//		}
//		call := calc.Calls()[0]
//		var in calculator.Operands
//		if err := call.Decode(&in); err != nil || call.Method != "multiply" || in != (calculator.Operands{A: 10, B: 3}) {
//			t.Errorf("calculator got %s(%+v), %v", call.Method, in, err)
//		}
//		if call.Data["user_id"] != "u-42" {
//			t.Errorf("the context data did not travel: %v", call.Data)
//		}
//	}
//
// With HYPHA_TEST_AMQP_URI set (say to amqp://guest:guest@localhost:5672/hypha-test),
// the same tests run against RabbitMQ.
package hyphatest
