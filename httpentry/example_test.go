package httpentry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/rpc"
)

var ErrNoSuchGreeting = rpc.NewError("NoSuchGreeting", "no greeting in that language")

type greeter struct{}

type greetIn struct {
	Name     string `path:"name"`
	Language string `query:"lang"`
}

func (greeter) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /greet/{name}", func(_ context.Context, in greetIn) (map[string]string, error) {
		switch in.Language {
		case "", "en":
			return map[string]string{"greeting": "hello " + in.Name}, nil
		case "fr":
			return map[string]string{"greeting": "bonjour " + in.Name}, nil
		}
		return nil, ErrNoSuchGreeting
	}, httpentry.Status(http.StatusNotFound, ErrNoSuchGreeting))
}

// A typed route on the embedded broker, called with Go's HTTP client.
func ExampleHandle() {
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://httpentry-example", "HTTP.ADDRESS": "127.0.0.1:0"}),
		framework.Logger(slog.New(slog.DiscardHandler)),
		framework.Service("greeter", func() greeter { return greeter{} }),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)
	for _, path := range []string{"/greet/ann?lang=fr", "/greet/ann?lang=xx"} {
		resp, err := http.Get("http://" + app.HTTPAddress() + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ", string(body))
	}
	// Output:
	// 200 {"greeting":"bonjour ann"}
	// 404 {"error":{"exc_type":"NoSuchGreeting","value":"no greeting in that language"}}
}
