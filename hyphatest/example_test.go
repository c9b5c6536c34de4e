package hyphatest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

// exampleT stands in for the *testing.T of a test: Examples have none.
type exampleT struct{ cleanups []func() }

func (t *exampleT) Helper()                           {}
func (t *exampleT) Name() string                      { return "Example" }
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) { fmt.Printf(format+"\n", args...) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// end runs the cleanups, as the end of a test does.
func (t *exampleT) end() {
	for _, f := range slices.Backward(t.cleanups) {
		f()
	}
}

// Start runs services on an embedded broker of the test's own; App.Proxy
// calls them.
func ExampleStart() {
	t := &exampleT{}
	defer t.end()

	app := hyphatest.Start(t,
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
	)
	score, err := rpc.Call[users.Score](context.Background(), app.Proxy(users.Name), "calculate_user_score",
		users.ScoreIn{UserID: "ann", BaseScore: 10, Multiplier: 3})
	fmt.Println(score.Score, err)
	// Output: 30 <nil>
}

// Hook calls one method through the broker with the context data of its
// context; the method's errors arrive as a caller would see them.
func ExampleHook() {
	t := &exampleT{}
	defer t.end()

	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	divide := hyphatest.Hook(t, app, calculator.Name, "divide")
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	var q float64
	fmt.Println(divide(ctx, calculator.Operands{A: 6, B: 3}, &q), q)
	fmt.Println(errors.Is(divide(ctx, calculator.Operands{A: 1, B: 0}, &q), calculator.ErrDivisionByZero))
	// Output:
	// <nil> 2
	// true
}

// Waiter waits until an event handler has run: here mailer's, for an
// order_created dispatched as the orders service would.
func ExampleWaiter() {
	t := &exampleT{}
	defer t.end()

	app := hyphatest.Start(t, framework.Service(mailer.Name, mailer.New))
	confirmed := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	_ = app.Dispatch(context.Background(), "orders", "order_created", mailer.Order{ID: "o-1", Item: "socks", Quantity: 2})
	_, err := confirmed.Wait(2 * time.Second)
	fmt.Println("send_confirmation returned", err)
	// Output: send_confirmation returned <nil>
}

// ReplaceProxy gives user_service a fake calculator that answers multiply
// and records the calls it gets.
func ExampleReplaceProxy() {
	t := &exampleT{}
	defer t.end()

	calc := hyphatest.NewFakeProxy(calculator.Name).Answer("multiply", 42)
	app := hyphatest.Start(t, framework.Service(users.Name, users.New, hyphatest.ReplaceProxy(calculator.Name, calc)))
	score, err := rpc.Call[users.Score](context.Background(), app.Proxy(users.Name), "calculate_user_score",
		users.ScoreIn{UserID: "ann", BaseScore: 6, Multiplier: 7})
	fmt.Println(score.Score, err)
	var in calculator.Operands
	_ = calc.Calls()[0].Decode(&in)
	fmt.Println(calc.Calls()[0].Method, in.A, in.B)
	// Output:
	// 42 <nil>
	// multiply 6 7
}

// ReplaceDispatcher gives orders a dispatcher that records its events
// instead of publishing them.
func ExampleReplaceDispatcher() {
	t := &exampleT{}
	defer t.end()

	sent := &hyphatest.FakeDispatcher{}
	app := hyphatest.Start(t, framework.Service(orders.Name, orders.New, hyphatest.ReplaceDispatcher(sent)))
	_, err := rpc.Call[orders.Order](context.Background(), app.Proxy(orders.Name), "create_order",
		orders.CreateIn{Item: "socks", Quantity: 2})
	fmt.Println(err)
	var o orders.Order
	_ = sent.Events()[0].Decode(&o)
	fmt.Println(sent.Events()[0].Type, o.Item, o.Quantity)
	// Output:
	// <nil>
	// order_created socks 2
}

// A FakeProxy needs no app at all: a service built by hand takes it as its
// rpc.Caller (nameko's worker_factory).
func ExampleFakeProxy() {
	calc := hyphatest.NewFakeProxy(calculator.Name).
		Answer("multiply", 30).
		Fail("divide", calculator.ErrDivisionByZero)
	s := users.New(users.Deps{Calc: calc})
	score, err := s.CalculateUserScore(context.Background(), users.ScoreIn{UserID: "ann", BaseScore: 10, Multiplier: 3})
	fmt.Println(score.Score, err)
	fmt.Println(calc.Call(context.Background(), "divide", calculator.Operands{A: 1}, nil))
	fmt.Println(calc.Call(context.Background(), "pow", nil, nil))
	// Output:
	// 30 <nil>
	// ZeroDivisionError: division by zero
	// hyphatest: fake calculator has no answer for "pow" (tell it with Answer, Fail or AnswerFunc): MethodNotFound
}

// A FakeDispatcher records what a service built by hand dispatches, with
// the context data it was dispatched with.
func ExampleFakeDispatcher() {
	sent := &hyphatest.FakeDispatcher{}
	s := orders.New(sent, slog.New(slog.DiscardHandler))
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	_, _ = s.CreateOrder(ctx, orders.CreateIn{Item: "hat", Quantity: 1})
	ev := sent.Events()[0]
	fmt.Println(ev.Type, ev.Data["user_id"])
	// Output: order_created u-42
}

// RestrictEntrypoints runs only some of a service's entrypoints: here
// mailer's send_confirmation, without its audit handler or its RPC method.
func Example_restrictEntrypoints() {
	t := &exampleT{}
	defer t.end()

	app := hyphatest.Start(t, framework.Service(mailer.Name, mailer.New, framework.RestrictEntrypoints("send_confirmation")))
	confirmed := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	_ = app.Dispatch(context.Background(), "orders", "order_created", mailer.Order{ID: "o-1", Item: "socks", Quantity: 2})
	_, err := confirmed.Wait(2 * time.Second)
	fmt.Println("send_confirmation returned", err)
	// Output: send_confirmation returned <nil>
}
