package httpentry_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing/fstest"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

// ErrUserNotFound is what the user service behind the Gateway answers for
// a user it does not know.
var ErrUserNotFound = rpc.NewError("UserNotFound", "no such user")

// User is a user, as the user service returns one.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Gateway serves users from a user service over HTTP, sums, and files.
type Gateway struct {
	users rpc.Caller
	files fstest.MapFS
}

// UserIn is GET /users/{id}'s input.
type UserIn struct {
	ID      string `path:"id"`       // the pattern's {id}
	Verbose bool   `query:"verbose"` // ?verbose=true
}

// Register declares the gateway's routes.
func (g *Gateway) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /users/{id}", g.User, httpentry.Status(http.StatusNotFound, ErrUserNotFound))
	httpentry.Handle(r, "POST /sum", g.Sum, httpentry.ContextHeaders()) // In from the JSON body
	httpentry.HandleHTTP(r, "GET /files/", http.FileServerFS(g.files))  // a plain http.Handler
}

// User asks the user service for one user.
func (g *Gateway) User(ctx context.Context, in UserIn) (User, error) {
	return rpc.Call[User](ctx, g.users, "get", map[string]any{"id": in.ID, "verbose": in.Verbose})
}

// SumIn is POST /sum's body.
type SumIn struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// Sum adds, and says for whom: the X-Hypha-User-Id header's user.
func (g *Gateway) Sum(ctx context.Context, in SumIn) (map[string]any, error) {
	return map[string]any{"sum": in.A + in.B, "for": contextdata.UserID(ctx)}, nil
}

// Typed routes filled from the path, the query and the body, an error
// declared as a 404, and a plain http.Handler.
func ExampleHandleHTTP() {
	users := hyphatest.NewFakeProxy("user_service").AnswerFunc("get", func(_ context.Context, in any) (any, error) {
		if in.(map[string]any)["id"] != "7" {
			return nil, ErrUserNotFound
		}
		return User{ID: "7", Name: "ann"}, nil
	})
	g := &Gateway{users: users, files: fstest.MapFS{"files/hello.txt": {Data: []byte("hello\n")}}}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://httpentry-guide", "HTTP.ADDRESS": "127.0.0.1:0"}),
		framework.Logger(slog.New(slog.DiscardHandler)),
		framework.Service("gateway", func() *Gateway { return g }),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	do := func(method, path, body string) {
		req, err := http.NewRequest(method, "http://"+app.HTTPAddress()+path, strings.NewReader(body))
		if err != nil {
			panic(err)
		}
		req.Header.Set("X-Hypha-User-Id", "u-42")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(out)))
	}
	do("GET", "/users/7?verbose=true", "")
	do("GET", "/users/8", "")
	do("POST", "/sum", `{"a": 1, "b": 2}`)
	do("GET", "/files/hello.txt", "")
	// Output:
	// 200 {"id":"7","name":"ann"}
	// 404 {"error":{"exc_type":"UserNotFound","value":"no such user"}}
	// 200 {"for":"u-42","sum":3}
	// 200 hello
}
