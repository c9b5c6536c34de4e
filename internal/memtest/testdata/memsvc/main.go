// Command memsvc is the service the memory test loads with large requests of
// every shape: typed RPC methods taking numbers, any value and a string, a
// raw method, and an event handler taking any payload. Each answers with
// something small, so that what the test measures is the requests' cost.
package main

import (
	"context"
	"sync/atomic"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/rpc"
)

type service struct{ events atomic.Int64 }

func (s *service) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "add", func(_ context.Context, in struct {
		A float64 `json:"a"`
		B float64 `json:"b"`
	}) (float64, error) {
		return in.A + in.B, nil
	})
	rpc.Handle(r, "echo", func(_ context.Context, in struct {
		V any `json:"v"`
	}) (bool, error) {
		return in.V != nil, nil
	})
	rpc.Handle(r, "text", func(_ context.Context, in struct {
		S string `json:"s"`
	}) (int, error) {
		return len(in.S), nil
	})
	rpc.HandleRaw(r, "blob", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		return reply.Reply([]byte("true"), "application/json")
	})
	events.Handle(r, "on_blob", "memsvc_source", "blob", func(context.Context, any) error {
		s.events.Add(1)
		return nil
	})
	rpc.Handle(r, "events_handled", func(context.Context, struct{}) (int64, error) { return s.events.Load(), nil })
}

func main() {
	framework.Run(framework.Service("memsvc", func() *service { return &service{} }))
}
