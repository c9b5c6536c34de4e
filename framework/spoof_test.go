package framework_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// serviceTopicPermissions are the write and read regular expressions of
// README's topic permissions on nameko-rpc for service's own user, whose
// calls have the reply key prefix reply.<service>: it may publish any key
// (requests to any service, replies to any caller, nameko's bare uuids
// included) but bind only its own requests and reply keys.
func serviceTopicPermissions(service string) [2]string {
	s := regexp.QuoteMeta(service)
	return [2]string{`.*`, fmt.Sprintf(`^(%s\.\*|reply\.%s\.[^.]+)$`, s, s)}
}

// callerTopicPermissions are README's topic permissions on nameko-rpc for a
// user that only calls services, with the reply key prefix reply.<name>: it
// may publish requests ("<service>.<method>") only, and bind only its own
// reply keys.
func callerTopicPermissions(name string) [2]string {
	return [2]string{`^[^.]+\.[^.]+$`, fmt.Sprintf(`^reply\.%s\.[^.]+$`, regexp.QuoteMeta(name))}
}

// topicUser is restrictedUser with topic permissions on nameko-rpc too.
func topicUser(t *testing.T, name string, perms [3]string, topic [2]string) string {
	t.Helper()
	uri := restrictedUser(t, name, perms)
	vh := testbroker.VHost(t)
	if out, err := testbroker.Rabbitmqctl("set_topic_permissions", "-p", vh, vh+"-"+name, rpc.DefaultExchange,
		topic[0], topic[1]); err != nil {
		t.Fatalf("set_topic_permissions: %v\n%s", err, out)
	}
	return uri
}

// oracle holds each call to "answer" until the test releases it, telling
// the test the call's reply key and correlation id meanwhile.
type oracle struct {
	asked   chan [2]string
	release chan struct{}
}

func (o *oracle) Register(r *entrypoint.Registry) {
	rpc.HandleRaw(r, "answer", func(ctx context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		o.asked <- [2]string{req.ReplyTo, req.CorrelationID}
		select {
		case <-o.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return reply.Reply([]byte(`"real"`), "application/json")
	})
}

// TestReplyKeyPrefixStopsSpoofing runs a calculator as a user with README's
// topic permissions and calls it as a caller-only user alice, whose reply
// keys have the prefix reply.alice: the calls go through, and nameko's
// callers without a prefix are still answered. Alice can neither bind
// another service's requests nor, holding another caller's reply key and
// correlation id, get a forged reply accepted: both are refused, where the
// same forgery by an unrestricted user succeeds.
func TestReplyKeyPrefixStopsSpoofing(t *testing.T) {
	t.Parallel()
	// Its own name, so that TestLeastPrivilege's calculator does not share its queue.
	const calc = "topic_calculator"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a bound on a stuck test, not a measure: user setup is slow on a loaded broker
	defer cancel()
	calcURI := topicUser(t, "topic-calc", servicePermissions(calc), serviceTopicPermissions(calc))
	hyphatest.Run(t, testbroker.URI(t), framework.ConfigValues(map[string]any{"AMQP_URI": calcURI, "RPC_REPLY_KEY_PREFIX": "reply." + calc}),
		framework.Service(calc, calculator.New))
	o := &oracle{asked: make(chan [2]string, 1), release: make(chan struct{}, 1)}
	hyphatest.Run(t, testbroker.URI(t), framework.Service("topic_oracle", func() *oracle { return o }))
	aliceURI := topicUser(t, "topic-alice", callerPermissions("alice"), callerTopicPermissions("alice"))

	alice, err := hyphatest.Client(t, ctx, aliceURI, rpc.Config{Owner: "alice", ReplyKeyPrefix: "reply.alice", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if sum, err := rpc.Call[float64](ctx, alice.Proxy(calc), "add", rpc.Args(1, 2)); err != nil || sum != 3 {
		t.Fatalf("alice: %s.add(1, 2) = %v, %v; want 3", calc, sum, err)
	}
	// A caller without a prefix, as nameko's, is answered too.
	if sum, err := rpc.Call[float64](ctx, dial(t).Proxy(calc), "add", rpc.Args(2, 2)); err != nil || sum != 4 {
		t.Fatalf("a caller without a prefix: %s.add(2, 2) = %v, %v; want 4", calc, sum, err)
	}
	// Alice's user may bind only keys with her prefix: without it, her
	// client cannot bind its reply queue, and the error says what is missing.
	_, err = hyphatest.Client(t, ctx, aliceURI, rpc.Config{Owner: "alice", Timeout: 10 * time.Second})
	for _, want := range []string{"ACCESS_REFUSED - access to topic", "in exchange 'nameko-rpc'",
		`the user needs the topic permission read on key`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("alice dialling without a prefix: %v; want an error containing %q", err, want)
		}
	}

	raw, err := amqp091.Dial(aliceURI)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Alice cannot see calculator's requests, their reply keys and
	// correlation ids: binding them is refused.
	for _, key := range []string{calc + ".*", "#", "reply.bob.*"} {
		err := onChannel(t, raw, func(ch *amqp091.Channel) error {
			q, err := ch.QueueDeclare("rpc.reply-alice-sniff", false, true, true, false, nil)
			if err != nil {
				return err
			}
			return ch.QueueBind(q.Name, key, rpc.DefaultExchange, false, nil)
		})
		wantTopicRefused(t, "alice binding "+key, err)
	}
	// Nor answer bob's call with a reply of her own.
	bob, err := hyphatest.Client(t, ctx, testbroker.URI(t), rpc.Config{ReplyKeyPrefix: "reply.bob", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	forged := amqp091.Publishing{ContentType: "application/json", Body: []byte(`{"result": "forged", "error": null}`)}
	for _, forger := range []struct {
		name string
		conn *amqp091.Connection
		want string // the result bob gets
	}{
		{"alice", raw, "real"},
		{"an unrestricted user", dialRaw(t, testbroker.URI(t)), "forged"},
	} {
		reply := bob.Proxy("topic_oracle").CallAsync(ctx, "answer", nil)
		var asked [2]string
		select {
		case asked = <-o.asked:
		case <-ctx.Done():
			t.Fatal("bob's call never came")
		}
		if !strings.HasPrefix(asked[0], "reply.bob.") {
			t.Fatalf("bob's reply key %q; want it to start with reply.bob.", asked[0])
		}
		err := onChannel(t, forger.conn, func(ch *amqp091.Channel) error {
			if err := ch.Confirm(false); err != nil {
				return err
			}
			confirms := ch.NotifyPublish(make(chan amqp091.Confirmation, 1))
			closed := ch.NotifyClose(make(chan *amqp091.Error, 1))
			p := forged
			p.CorrelationId = asked[1]
			if err := ch.PublishWithContext(ctx, rpc.DefaultExchange, asked[0], false, false, p); err != nil {
				return err
			}
			select {
			case c := <-confirms:
				if !c.Ack {
					return errors.New("the broker nacked the forged reply")
				}
				return nil
			case err := <-closed:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if forger.want == "real" {
			wantTopicRefused(t, forger.name+" publishing to bob's reply key", err)
		} else if err != nil {
			t.Fatalf("%s publishing to bob's reply key: %v", forger.name, err)
		}
		o.release <- struct{}{}
		var got string
		if err := reply.Result(&got); err != nil || got != forger.want {
			t.Errorf("after %s's forgery bob got %q, %v; want %q", forger.name, got, err, forger.want)
		}
	}

	// Calculator's user binds only its own requests and reply keys.
	calcRaw := dialRaw(t, calcURI)
	err = onChannel(t, calcRaw, func(ch *amqp091.Channel) error {
		return ch.QueueBind("rpc-"+calc, "topic_oracle.*", rpc.DefaultExchange, false, nil)
	})
	wantTopicRefused(t, "calculator's user binding topic_oracle.*", err)
}

// dialRaw opens a plain amqp091-go connection to uri, closed when t ends.
func dialRaw(t *testing.T, uri string) *amqp091.Connection {
	t.Helper()
	conn, err := amqp091.Dial(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// onChannel runs f on a new channel of conn, which the broker may close.
func onChannel(t *testing.T, conn *amqp091.Connection, f func(ch *amqp091.Channel) error) error {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	return f(ch)
}

// wantTopicRefused fails t unless err is RabbitMQ's refusal for want of a
// topic permission.
func wantTopicRefused(t *testing.T, what string, err error) {
	t.Helper()
	var amqpErr *amqp091.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp091.AccessRefused || !strings.Contains(amqpErr.Reason, "access to topic") {
		t.Errorf("%s: %v; want ACCESS_REFUSED for a topic permission", what, err)
	}
}
