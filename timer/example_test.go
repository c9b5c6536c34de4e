package timer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/timer"
)

// reports sends a digest once an hour, from one instance of the service
// however many run.
type reports struct{ sent chan struct{} }

func (s *reports) Register(r *entrypoint.Registry) {
	timer.Handle(r, "digest", time.Hour, s.digest, timer.Once(), timer.Eager())
}

func (s *reports) digest(ctx context.Context) error {
	fmt.Println("sending the digest")
	s.sent <- struct{}{}
	return nil
}

// A Once timer on the embedded broker; Eager runs the hour's tick at start.
func ExampleOnce() {
	svc := &reports{sent: make(chan struct{}, 1)}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": "memory://timer-example"}),
		framework.Logger(quiet),
		framework.Service("reports", func() *reports { return svc }),
	)
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		panic(err)
	}
	defer app.Stop(ctx)
	<-svc.sent
	// Output: sending the digest
}

// A timer that runs on every instance of its service, every minute.
func ExampleHandle() {
	r := entrypoint.NewRegistry("cache")
	timer.Handle(r, "evict", time.Minute, func(ctx context.Context) error { return nil })
	for _, t := range entrypoint.Of[*timer.Timer](r) {
		d := t.Describe()
		fmt.Println(d.Name, d.Detail["interval"], d.Detail["once"])
	}
	// Output: evict 1m0s false
}
