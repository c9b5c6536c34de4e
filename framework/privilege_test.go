package framework_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
	"github.com/hypha-go/hypha/transport"
	transportdial "github.com/hypha-go/hypha/transport/dial"
)

// servicePermissions are the configure, write and read regular expressions
// of README's "Least privilege" for a service's own user: service serves
// RPC, calls others, handles the events of sources and dispatches its own.
func servicePermissions(service string, sources ...string) [3]string {
	s := strings.ReplaceAll(service, ".", `\.`)
	own := fmt.Sprintf(`rpc-%s|rpc\.reply-%s-.+|timer-%s\..+`, s, s, s)
	var configure, write, read = `nameko-rpc|` + own + `|` + s + `\.events`, `nameko-rpc|amq\.default|` + own + `|` + s + `\.events`, `nameko-rpc|` + own
	if len(sources) > 0 {
		src := strings.Join(sources, "|")
		evt := fmt.Sprintf(`evt-(%s)-.+--%s\..+`, src, s)
		configure += fmt.Sprintf(`|(%s)\.events|%s`, src, evt)
		write += "|" + evt
		read += fmt.Sprintf(`|(%s)\.events|%s`, src, evt)
	}
	return [3]string{"^(" + configure + ")$", "^(" + write + ")$", "^(" + read + ")$"}
}

// callerPermissions are README's permissions of a user that only calls
// services, as the reply queue owner owner: configure on its reply queues
// alone, nothing shared.
func callerPermissions(owner string) [3]string {
	reply := fmt.Sprintf(`rpc\.reply-%s-.+`, strings.ReplaceAll(owner, ".", `\.`))
	return [3]string{"^" + reply + "$", "^(nameko-rpc|" + reply + ")$", "^(nameko-rpc|" + reply + ")$"}
}

// ticker is a service with a timer.Once, whose token queues are shared by
// its instances.
type ticker struct{}

func (ticker) Register(r *entrypoint.Registry) {
	timer.Handle(r, "beat", time.Hour, func(context.Context) error { return nil }, timer.Once())
}

// vhostNames lists the names of the package vhost's exchanges or queues
// (what: "exchanges" or "queues"), but the broker's own.
func vhostNames(t *testing.T, what string) []string {
	t.Helper()
	out, err := testbroker.Rabbitmqctl("list_"+what, "-q", "--no-table-headers", "-p", testbroker.VHost(t), "name")
	if err != nil {
		t.Fatalf("list_%s: %v\n%s", what, err, out)
	}
	var names []string
	for _, name := range strings.Fields(out) {
		if !strings.HasPrefix(name, "amq.") {
			names = append(names, name)
		}
	}
	return names
}

// refusedTo checks that fn, run on a channel of its own on conn, is refused
// for want of a permission.
func refusedTo(t *testing.T, conn *amqp091.Connection, what string, fn func(ch *amqp091.Channel) error) {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	var amqpErr *amqp091.Error
	if err := fn(ch); !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.AccessRefused {
		t.Errorf("a caller-only user may %s: %v", what, err)
	}
}

// shared lists the exchanges and queues in the package's vhost, checking
// that want are among them (a queue's name may be given by its start).
func shared(t *testing.T, want ...string) (exchanges, queues []string) {
	t.Helper()
	exchanges, queues = vhostNames(t, "exchanges"), vhostNames(t, "queues")
	for _, name := range want {
		if !slices.Contains(exchanges, name) && !slices.ContainsFunc(queues, func(q string) bool { return strings.HasPrefix(q, name) }) {
			t.Fatalf("no exchange or queue %q among %q and %q", name, exchanges, queues)
		}
	}
	return exchanges, queues
}

// callerCannotTakeTheFleetDown has a caller-only user try to delete, and to
// declare again as another type, every exchange and queue its services
// share, and to purge the queues: each is refused.
func callerCannotTakeTheFleetDown(t *testing.T, uri string, exchanges, queues []string) {
	t.Helper()
	conn, err := amqp091.Dial(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, ex := range exchanges {
		refusedTo(t, conn, "delete exchange "+ex, func(ch *amqp091.Channel) error { return ch.ExchangeDelete(ex, false, false) })
		refusedTo(t, conn, "declare exchange "+ex+" as a fanout exchange", func(ch *amqp091.Channel) error {
			return ch.ExchangeDeclare(ex, amqp091.ExchangeFanout, true, false, false, false, nil)
		})
	}
	for _, q := range queues {
		if strings.HasPrefix(q, "rpc.reply-"+rpc.StandaloneOwner+"-") {
			continue // its own
		}
		refusedTo(t, conn, "delete queue "+q, func(ch *amqp091.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		refusedTo(t, conn, "declare queue "+q+" otherwise", func(ch *amqp091.Channel) error {
			_, err := ch.QueueDeclare(q, false, true, false, false, nil)
			return err
		})
		refusedTo(t, conn, "purge queue "+q, func(ch *amqp091.Channel) error { _, err := ch.QueuePurge(q, false); return err })
	}
}

// restrictedUser creates a user allowed perms on the package's vhost,
// deleted when the test ends, and returns its URI.
func restrictedUser(t *testing.T, name string, perms [3]string) string {
	t.Helper()
	vh := testbroker.VHost(t)
	user := vh + "-" + name
	if out, err := testbroker.Rabbitmqctl("add_user", user, "pw-"+name); err != nil {
		t.Fatalf("add_user: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = testbroker.Rabbitmqctl("delete_user", user) })
	if out, err := testbroker.Rabbitmqctl("set_permissions", "-p", vh, user, perms[0], perms[1], perms[2]); err != nil {
		t.Fatalf("set_permissions: %v\n%s", err, out)
	}
	u, err := url.Parse(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, "pw-"+name)
	return u.String()
}

// TestLeastPrivilege runs calculator, user_service, orders and mailer each
// as a user with only README's permissions, and calls them as a caller-only
// user: every call and event goes through. user_service's user, which may
// call calculator, may neither serve calculator nor consume its queue, and
// the errors name the permission that was missing.
func TestLeastPrivilege(t *testing.T) {
	t.Parallel()
	apps := []struct {
		name    string
		svc     framework.Option
		sources []string
	}{
		{calculator.Name, framework.Service(calculator.Name, calculator.New), nil},
		{users.Name, framework.Service(users.Name, users.New), nil},
		{orders.Name, framework.Service(orders.Name, orders.New), nil},
		{mailer.Name, framework.Service(mailer.Name, mailer.New), []string{mailer.Source}},
		{"ticker", framework.Service("ticker", func() ticker { return ticker{} }), nil},
	}
	uris := map[string]string{}
	for _, a := range apps {
		uris[a.name] = restrictedUser(t, a.name, servicePermissions(a.name, a.sources...))
		hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(map[string]any{"AMQP_URI": uris[a.name]}), a.svc)
	}
	// rabbitmqctl takes seconds: the users and lists are made before the
	// calls' deadline starts.
	callerURI := restrictedUser(t, "caller", callerPermissions(rpc.StandaloneOwner))
	caller2URI := restrictedUser(t, "caller2", callerPermissions(rpc.StandaloneOwner))
	attacker := restrictedUser(t, "caller3", callerPermissions(rpc.StandaloneOwner))
	exchanges, queues := shared(t, "nameko-rpc", orders.Name+".events", "rpc-"+calculator.Name, "evt-"+mailer.Source+"-",
		"timer-ticker.beat", "timer-ticker.beat.delay")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	caller, err := hyphatest.Client(t, ctx, callerURI, rpc.Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	score, err := rpc.Call[users.Score](ctx, caller.Proxy(users.Name), "calculate_user_score",
		users.ScoreIn{UserID: 7, BaseScore: 2, Multiplier: 3})
	if err != nil || score.Score != 6 {
		t.Fatalf("user_service.calculate_user_score = %v, %v; want 6", score, err)
	}
	o, err := rpc.Call[orders.Order](ctx, caller.Proxy(orders.Name), "create_order", orders.CreateIn{Item: "socks", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	for {
		sent, err := rpc.Call[[]mailer.Confirmation](ctx, caller.Proxy(mailer.Name), "sent", mailer.SentIn{})
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) > 0 && sent[len(sent)-1].OrderID == o.ID {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("mailer never confirmed the order")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The caller may not delete nor declare again what the services share,
	// and its calls go on.
	callerCannotTakeTheFleetDown(t, attacker, exchanges, queues)
	if sum, err := rpc.Call[float64](ctx, caller.Proxy(calculator.Name), "add", calculator.Operands{A: 1, B: 2}); err != nil || sum != 3 {
		t.Fatalf("calculator.add after the caller's attempts = %v, %v; want 3", sum, err)
	}

	// user_service's user may not serve calculator: declaring its queue
	// needs configure.
	app, err := framework.New(framework.ConfigValues(map[string]any{"AMQP_URI": uris[users.Name]}),
		framework.Logger(quiet), framework.Service(calculator.Name, calculator.New))
	if err != nil {
		t.Fatal(err)
	}
	err = app.Start(ctx)
	if err == nil {
		app.Stop(ctx)
		t.Fatal("user_service's user started calculator")
	}
	for _, want := range []string{
		fmt.Sprintf("ACCESS_REFUSED - access to queue 'rpc-calculator' in vhost '%s' refused for user '%s-%s'",
			testbroker.VHost(t), testbroker.VHost(t), users.Name),
		`the user needs the permission configure on queue "rpc-calculator"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("start error %q; want it to contain %q", err, want)
		}
	}
	// Nor read calculator's requests off its queue: consuming needs read.
	for _, who := range []string{users.Name, "caller"} {
		uri := uris[who]
		if who == "caller" {
			uri = caller2URI
		}
		b, err := transportdial.Dial(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Consume(ctx, transport.ConsumeOptions{Queue: "rpc-calculator", Prefetch: 1}, func(d transport.Delivery) { d.Ack() })
		b.Close()
		if err == nil || !strings.Contains(err.Error(), `the user needs the permission read on queue "rpc-calculator"`) {
			t.Errorf("%s consuming rpc-calculator: %v; want a refused read access", who, err)
		}
	}
}
