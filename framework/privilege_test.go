package framework_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
)

// servicePermissions are the configure, write and read regular expressions
// of README's "Least privilege" for a service's own user: service serves
// RPC, calls others, handles the events of sources and dispatches its own.
func servicePermissions(service string, sources ...string) [3]string {
	s := strings.ReplaceAll(service, ".", `\.`)
	own := fmt.Sprintf(`rpc-%s|rpc\.reply-%s-.+`, s, s)
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
// services, as the reply queue owner owner.
func callerPermissions(owner string) [3]string {
	p := fmt.Sprintf(`^(nameko-rpc|rpc\.reply-%s-.+)$`, strings.ReplaceAll(owner, ".", `\.`))
	return [3]string{p, p, p}
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
	}
	uris := map[string]string{}
	for _, a := range apps {
		uris[a.name] = restrictedUser(t, a.name, servicePermissions(a.name, a.sources...))
		start(t, framework.ConfigValues(map[string]any{"AMQP_URI": uris[a.name]}), a.svc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	caller, err := rpc.Dial(ctx, rpc.Config{URI: restrictedUser(t, "caller", callerPermissions(rpc.StandaloneOwner)), Timeout: 10 * time.Second})
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

	// user_service's user may not serve calculator: declaring its queue
	// needs configure.
	app, err := framework.New(framework.ConfigValues(map[string]any{"AMQP_URI": uris[users.Name]}),
		framework.WithLogger(quiet), framework.Service(calculator.Name, calculator.New))
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
			uri = restrictedUser(t, "caller2", callerPermissions(rpc.StandaloneOwner))
		}
		b, err := amqp.Dial(ctx, uri, amqp.Options{})
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
