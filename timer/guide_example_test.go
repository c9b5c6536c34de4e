package timer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/timer"
)

// Reports evicts its cache every minute on every instance, and sends a
// digest once an hour from one instance, however many run.
type Reports struct{}

// Register declares the timers.
func (s *Reports) Register(r *entrypoint.Registry) {
	timer.Handle(r, "evict", time.Minute, s.Evict)                                  // every instance
	timer.Handle(r, "digest", time.Hour, s.SendDigest, timer.Once(), timer.Eager()) // one instance per hour
}

// SendDigest sends the hour's digest.
func (s *Reports) SendDigest(ctx context.Context) error { return nil }

// Evict empties the cache.
func (s *Reports) Evict(ctx context.Context) error { return nil }

// Eager runs a timer's first tick at start; Once runs it on one instance per
// interval.
func ExampleEager() {
	r := entrypoint.NewRegistry("reports")
	(&Reports{}).Register(r)
	for _, t := range entrypoint.Of[*timer.Timer](r) {
		d := t.Describe()
		fmt.Println(d.Name, d.Detail["interval"], d.Detail["once"])
	}
	// Output:
	// evict 1m0s false
	// digest 1h0m0s true
}
