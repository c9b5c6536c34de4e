package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// exampleURI is the embedded broker the examples run on: copied into a
// program, they need no RabbitMQ (an amqp:// URI works the same).
const exampleURI = "memory://rpc-example"

// ErrNoSuchUser is part of the "users_example" service's contract.
var ErrNoSuchUser = rpc.NewError("NoSuchUser", "no such user")

type lookupIn struct {
	ID int `json:"id"`
}

// runUsers serves "users_example" until the returned function is called.
func runUsers() (stop func()) {
	ctx := context.Background()
	broker, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	r := entrypoint.NewRegistry("users_example")
	rpc.Handle(r, "name", func(_ context.Context, in lookupIn) (string, error) {
		if in.ID != 1 {
			return "", ErrNoSuchUser
		}
		return "ann", nil
	}, rpc.Expected(ErrNoSuchUser))
	srv := rpc.NewServer(broker, r, rpc.ServerConfig{Service: "users_example"})
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	return func() {
		srv.Stop(ctx)
		broker.Close()
	}
}

func Example() {
	stop := runUsers()
	defer stop()

	ctx := context.Background()
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
	users := client.Proxy("users_example")

	name, err := rpc.Call[string](ctx, users, "name", lookupIn{ID: 1})
	fmt.Println(name, err)

	_, err = rpc.Call[string](ctx, users, "name", rpc.Args(2)) // positional, as nameko's users.name(2)
	fmt.Println(errors.Is(err, ErrNoSuchUser), err)

	err = users.Call(ctx, "nickname", nil, nil)
	fmt.Println(errors.Is(err, rpc.ErrMethodNotFound))

	err = client.Proxy("nobody").Call(ctx, "anything", nil, nil)
	fmt.Println(errors.Is(err, rpc.ErrServiceNotFound))
	// Output:
	// ann <nil>
	// true NoSuchUser: no such user
	// true
	// true
}

func ExampleProxy_CallAsync() {
	stop := runUsers()
	defer stop()

	ctx := context.Background()
	conn, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	users := client.Proxy("users_example")

	// Both calls are in flight at once; Result waits for each.
	first := users.CallAsync(ctx, "name", lookupIn{ID: 1})
	second := users.CallAsync(ctx, "name", lookupIn{ID: 7})
	var name string
	fmt.Println(first.Result(&name), name)
	fmt.Println(second.Result(&name))
	// Output:
	// <nil> ann
	// NoSuchUser: no such user
}

func ExampleNewError() {
	err := fmt.Errorf("looking up 7: %w", ErrNoSuchUser)
	fmt.Println(errors.Is(err, ErrNoSuchUser))
	fmt.Println(ErrNoSuchUser.ExcType, ErrNoSuchUser.ExcPath)
	// Output:
	// true
	// NoSuchUser github.com/hypha-go/hypha/rpc_test.NoSuchUser
}

// A registered method describes what it takes and what it may return, in
// the order a positional call fills its arguments; package introspect builds
// a service's description from it.
func ExampleHandle_describe() {
	r := entrypoint.NewRegistry("users_example")
	rpc.Handle(r, "rename", func(context.Context, struct {
		ID    int     `json:"id"`
		Name  string  `json:"name"`
		Title *string `json:"title"`
	}) (bool, error) {
		return true, nil
	}, rpc.Expected(ErrNoSuchUser))
	d := r.Entrypoints()[0].Describe()
	for _, a := range d.Detail["args"].([]any) {
		p := a.(map[string]any)
		fmt.Println(p["name"], p["type"], p["required"])
	}
	for _, e := range d.Detail["errors"].([]any) {
		fmt.Println("raises:", e.(map[string]any)["exc_type"])
	}
	// Output:
	// id int true
	// name string true
	// title *string false
	// raises: NoSuchUser
}

// With a ReplyKeyPrefix, replies come back with the routing key
// "<prefix>.<uuid>", which RabbitMQ's topic permissions can reserve for one
// user (RPC_REPLY_KEY_PREFIX sets it for a service's calls).
func ExampleConfig_replyKeyPrefix() {
	ctx := context.Background()
	broker, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	r := entrypoint.NewRegistry("keys_example")
	rpc.HandleRaw(r, "reply_to", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		return reply.Reply([]byte(strconv.Quote(req.ReplyTo)), "application/json")
	})
	srv := rpc.NewServer(broker, r, rpc.ServerConfig{Service: "keys_example"})
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	conn, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{ReplyKeyPrefix: "reply.web"})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	key, err := rpc.Call[string](ctx, client.Proxy("keys_example"), "reply_to", nil)
	fmt.Println(strings.HasPrefix(key, "reply.web."), err)

	err = rpc.NewClient(conn, rpc.Config{ReplyKeyPrefix: "web"}).Start(ctx)
	fmt.Println(err != nil)
	// Output:
	// true <nil>
	// true
}

// A client that never sends a request again after a lost connection, except
// for the calls marked idempotent: the others wait for their reply until
// their deadline.
func ExampleConfig_noResend() {
	stop := runUsers()
	defer stop()

	ctx := context.Background()
	conn, err := dial.Dial(ctx, exampleURI)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{Timeout: 5 * time.Second, NoResend: true})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	name, err := rpc.Call[string](ctx, client.Proxy("users_example").Idempotent(), "name", lookupIn{ID: 1})
	fmt.Println(name, err)
	// Output: ann <nil>
}
