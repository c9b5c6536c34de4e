package framework_test

import (
	"context"
	"fmt"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/rpc"
	transportdial "github.com/hypha-go/hypha/transport/dial"
)

// New builds an app that can be started and stopped from code: here two
// services, user_service calling calculator through its injected proxy, on
// the embedded broker (AMQP_URI amqp://... runs the same on RabbitMQ).
func ExampleNew() {
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://framework-example"}),
		framework.Logger(quiet),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)

	conn, err := transportdial.Dial(ctx, "memory://framework-example")
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	client := rpc.NewClient(conn, rpc.Config{})
	if err := client.Start(ctx); err != nil {
		panic(err)
	}
	defer client.Close()
	score, err := rpc.Call[users.Score](ctx, client.Proxy(users.Name), "calculate_user_score",
		map[string]any{"user_id": "ann", "base_score": 10, "multiplier": 3})
	fmt.Println(score.UserID, score.Score, err)
	// Output: ann 30 <nil>
}
