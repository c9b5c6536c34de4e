package hyphatest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartRunsOnTheEmbeddedBroker(t *testing.T) {
	t.Setenv(hyphatest.EnvAMQPURI, "")
	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	if !strings.HasPrefix(app.URI(), "memory://teststartrunsontheembeddedbroker-") {
		t.Errorf("URI = %q, want a memory:// broker named after the test", app.URI())
	}
	sum, err := rpc.Call[float64](context.Background(), app.Proxy(calculator.Name), "add", rpc.Args(1, 2))
	if err != nil || sum != 3 {
		t.Fatalf("add = %v, %v", sum, err)
	}
	if app.Framework().Config().AMQPURI != app.URI() {
		t.Errorf("the app runs on %q, not %q", app.Framework().Config().AMQPURI, app.URI())
	}
}

func TestStartGivesEachTestItsOwnBroker(t *testing.T) {
	t.Setenv(hyphatest.EnvAMQPURI, "") // RabbitMQ's vhost is shared
	a := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	b := hyphatest.Start(t, framework.Service(users.Name, users.New))
	if a.URI() == b.URI() {
		t.Fatalf("two apps share %q", a.URI())
	}
	// b's broker has no calculator: users' call to it finds no service.
	_, err := rpc.Call[users.Score](context.Background(), b.Proxy(users.Name), "calculate_user_score",
		users.ScoreIn{UserID: "ann", BaseScore: 1, Multiplier: 2})
	if !errors.Is(err, rpc.ErrServiceNotFound) && !strings.Contains(err.Error(), "UnknownService") {
		t.Fatalf("err = %v, want the calculator not found", err)
	}
}

// fakeTB records what the kit reports instead of failing the test.
type fakeTB struct {
	testing.TB
	fatal string
}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
}

// reporter is a service that declares its proxy as a *rpc.Proxy.
type reporter struct{ calc *rpc.Proxy }

type reporterDeps struct {
	fx.In
	Calc *rpc.Proxy `name:"calculator"`
}

func newReporter(d reporterDeps) *reporter { return &reporter{calc: d.Calc} }

func (r *reporter) Register(reg *entrypoint.Registry) {
	rpc.Handle(reg, "total", func(ctx context.Context, in calculator.Operands) (float64, error) {
		return rpc.Call[float64](ctx, r.calc, "add", in)
	})
}

func TestReplaceProxyAndHook(t *testing.T) {
	calc := hyphatest.NewFakeProxy(calculator.Name).Answer("multiply", 30)
	app := hyphatest.Start(t, framework.Service(users.Name, users.New, hyphatest.ReplaceProxy(calculator.Name, calc)))
	score := hyphatest.Hook(t, app, users.Name, "calculate_user_score")

	ctx := contextdata.WithUserID(context.Background(), "u-7")
	var got users.Score
	if err := score(ctx, users.ScoreIn{UserID: "ann", BaseScore: 10, Multiplier: 3}, &got); err != nil {
		t.Fatal(err)
	}
	if got.Score != 30 || got.UserID != "ann" {
		t.Fatalf("score = %+v", got)
	}
	calls := calc.Calls()
	if len(calls) != 1 || calls[0].Method != "multiply" || calls[0].Data["user_id"] != "u-7" {
		t.Fatalf("calls = %+v", calls)
	}
	var in map[string]float64
	if err := calls[0].Decode(&in); err != nil || in["a"] != 10 || in["b"] != 3 {
		t.Fatalf("multiply's input = %v, %v", in, err)
	}

	calc.Fail("multiply", calculator.ErrDivisionByZero)
	err := score(ctx, users.ScoreIn{UserID: "ann", BaseScore: 1, Multiplier: 0}, &got)
	if !errors.Is(err, calculator.ErrDivisionByZero) {
		t.Fatalf("err = %v, want the fake's error relayed", err)
	}
}

func TestReplaceProxyRefusesAConcreteProxy(t *testing.T) {
	_, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://refused"}),
		framework.Logger(slog.New(slog.DiscardHandler)),
		framework.Service("reporter", newReporter, hyphatest.ReplaceProxy(calculator.Name, hyphatest.NewFakeProxy(calculator.Name))),
	)
	if err == nil || !strings.Contains(err.Error(), "declare it as an rpc.Caller") {
		t.Fatalf("err = %v, want it to say the proxy must be an rpc.Caller", err)
	}
}

func TestReplaceDispatcherAndWaiter(t *testing.T) {
	sent := &hyphatest.FakeDispatcher{}
	app := hyphatest.Start(t, framework.Service(orders.Name, orders.New, hyphatest.ReplaceDispatcher(sent)))
	w := hyphatest.Waiter(t, app, orders.Name, "create_order")
	ctx := contextdata.With(context.Background(), contextdata.KeyLanguage, "en-gb")
	o, err := rpc.Call[orders.Order](ctx, app.Proxy(orders.Name), "create_order", orders.CreateIn{Item: "socks", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	result, err := w.Wait(time.Second)
	if err != nil || result.(orders.Order) != o {
		t.Fatalf("Wait = %+v, %v; want %+v", result, err, o)
	}
	evs := sent.Events()
	if len(evs) != 1 || evs[0].Type != orders.EventOrderCreated || evs[0].Data["language"] != "en-gb" {
		t.Fatalf("events = %+v", evs)
	}
	var payload orders.Order
	if err := evs[0].Decode(&payload); err != nil || payload != o {
		t.Fatalf("payload = %+v, %v; want %+v", payload, err, o)
	}

	sent.FailWith(errors.New("broker on fire"))
	_, err = rpc.Call[orders.Order](ctx, app.Proxy(orders.Name), "create_order", orders.CreateIn{Item: "hat", Quantity: 1})
	if err == nil || !strings.Contains(err.Error(), "broker on fire") {
		t.Fatalf("err = %v, want the dispatcher's", err)
	}
}

func TestWaiterSeesEventHandlersAndTimesOut(t *testing.T) {
	app := hyphatest.Start(t, framework.Service(mailer.Name, mailer.New))
	w := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	ctx := context.Background()
	if err := app.Dispatch(ctx, mailer.Source, mailer.EventType, mailer.Order{ID: "o-1", Item: "socks", Quantity: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Wait(5 * time.Second); err != nil {
		t.Fatalf("send_confirmation failed: %v", err)
	}

	tb := &fakeTB{TB: t}
	hyphatest.Waiter(tb, app, mailer.Name, "send_confirmation").Wait(50 * time.Millisecond)
	if tb.fatal != "mailer.send_confirmation did not run within 50ms" {
		t.Fatalf("Wait reported %q", tb.fatal)
	}
}

func TestRestrictEntrypoints(t *testing.T) {
	t.Setenv(hyphatest.EnvAMQPURI, "") // on RabbitMQ, another test's rpc-mailer queue would take the call
	app := hyphatest.Start(t, framework.Service(mailer.Name, mailer.New, framework.RestrictEntrypoints("send_confirmation")))
	w := hyphatest.Waiter(t, app, mailer.Name, "send_confirmation")
	if err := app.Dispatch(context.Background(), mailer.Source, mailer.EventType, mailer.Order{ID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Wait(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	// sent() is not served: the RPC queue answers the built-in
	// introspection method only.
	_, err := rpc.Call[[]mailer.Confirmation](context.Background(), app.Proxy(mailer.Name), "sent", nil)
	if !errors.Is(err, rpc.ErrMethodNotFound) {
		t.Fatalf("sent() = %v, want MethodNotFound", err)
	}
}
