package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// guideURI is the embedded broker of the examples that docs/calling.md and
// docs/services.md quote.
const guideURI = "memory://rpc-guide"

// startCalculator runs the calculator example on guideURI until the returned
// function is called.
func startCalculator() (stop func()) {
	ctx := context.Background()
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": guideURI}),
		framework.Logger(slog.New(slog.DiscardHandler)),
		framework.Service(calculator.Name, calculator.New),
	)
	if err != nil {
		panic(err)
	}
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	return func() { _ = app.Stop(ctx) }
}

// A standalone client (nameko's ClusterRpcClient) calls a service with
// keyword arguments, a struct or a map, or with positional ones, rpc.Args.
func ExampleNewClient() {
	stop := startCalculator()
	defer stop()
	ctx := context.Background()

	conn, err := dial.Dial(ctx, guideURI) // amqp://guest:guest@localhost:5672/ on RabbitMQ
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	calc := client.Proxy(calculator.Name)

	var sum float64
	err = calc.Call(ctx, "add", calculator.Operands{A: 1, B: 2}, &sum) // keyword arguments
	fmt.Println(sum, err)
	sum, err = rpc.Call[float64](ctx, calc, "add", rpc.Args(1, 2)) // positional arguments, typed result
	fmt.Println(sum, err)

	err = calc.Call(ctx, "add", []float64{1, 2}, &sum) // a plain slice is refused: which did it mean?
	fmt.Println(err != nil)
	// Output:
	// 3 <nil>
	// 3 <nil>
	// true
}

// ErrCardDeclined is what the payments service of Example_compensation
// answers.
var ErrCardDeclined = rpc.NewError("CardDeclined", "the card was declined")

// Purchase is an order the shop of Example_compensation checks out.
type Purchase struct {
	ID    string   `json:"id"`
	Items []string `json:"items"`
}

// Receipt is what the payments service answers a charge with.
type Receipt struct {
	ID string `json:"id"`
}

// shop calls the payments and stock services.
type shop struct{ payments, stock rpc.Caller }

// checkout charges a purchase. When the charge fails it releases the stock,
// detached from ctx, which may have ended, but with its context data.
func (s *shop) checkout(ctx context.Context, purchase Purchase) (*Receipt, error) {
	var receipt Receipt
	if err := s.payments.Call(ctx, "charge", purchase, &receipt); err != nil {
		undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second) // keeps the context data
		defer cancel()
		_ = s.stock.Call(undo, "release", purchase, nil)
		return nil, err
	}
	return &receipt, nil
}

// Compensation: undoing work after a failed call, with a budget of its own
// rather than the caller's context.
func Example_compensation() {
	payments := hyphatest.NewFakeProxy("payments").Fail("charge", ErrCardDeclined)
	stock := hyphatest.NewFakeProxy("stock").Answer("release", nil)
	s := &shop{payments: payments, stock: stock}

	ctx := contextdata.WithUserID(context.Background(), "u-42")
	_, err := s.checkout(ctx, Purchase{ID: "p-1", Items: []string{"socks"}})
	fmt.Println(errors.Is(err, ErrCardDeclined), err)
	release := stock.Calls()[0]
	fmt.Println(release.Method, release.Data["user_id"])
	// Output:
	// true CardDeclined: the card was declined
	// release u-42
}

// uploads is the store of ExampleRawReply_Error.
var uploads = struct {
	sync.Mutex
	bodies []string
}{}

// store keeps body, refusing one over 64 bytes, and returns its id.
func store(_ context.Context, body []byte, contentType string) (string, error) {
	if len(body) > 64 {
		return "", fmt.Errorf("%d bytes of %s: at most 64 fit", len(body), contentType)
	}
	uploads.Lock()
	defer uploads.Unlock()
	uploads.bodies = append(uploads.bodies, string(body))
	return fmt.Sprintf("u-%d", len(uploads.bodies)), nil
}

// A raw method acks before its work, then answers with JSON of its own or
// with a nameko error, which a caller's errors.Is matches by exc_type.
func ExampleRawReply_Error() {
	ctx := context.Background()
	broker, err := dial.Dial(ctx, guideURI)
	if err != nil {
		panic(err)
	}
	defer broker.Close()
	r := entrypoint.NewRegistry("store_example")
	rpc.HandleRaw(r, "upload", func(ctx context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		if err := reply.Ack(); err != nil { // not delivered again, whatever happens next
			return err
		}
		id, err := store(ctx, req.Body, req.ContentType)
		if err != nil {
			return reply.Error("StoreError", err.Error())
		}
		return reply.Reply(fmt.Appendf(nil, `{"id": %q}`, id), "application/json")
	})
	srv := rpc.NewServer(broker, r, rpc.ServerConfig{Service: "store_example"})
	if err := srv.Start(ctx); err != nil {
		panic(err)
	}
	defer srv.Stop(ctx)

	client := rpc.NewClient(broker, rpc.Config{Timeout: 5 * time.Second})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	upload := client.Proxy("store_example")
	var out struct{ ID string }
	fmt.Println(upload.Call(ctx, "upload", rpc.Args("abc"), &out), out.ID)
	err = upload.Call(ctx, "upload", rpc.Args(strings.Repeat("x", 64)), &out)
	fmt.Println(errors.Is(err, &rpc.RemoteError{ExcType: "StoreError"}), err)
	// Output:
	// <nil> u-1
	// true StoreError: 89 bytes of application/json: at most 64 fit
}
