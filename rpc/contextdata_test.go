package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/ctxwire"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
)

// atTheLimit is context data exactly at MaxItems and MaxSize (as Check
// counts: the header's name, and a string's bytes plus 5), with a call-id
// stack of MaxCallIDs entries of MaxCallIDSize bytes.
func atTheLimit(t *testing.T) context.Context {
	t.Helper()
	d := contextdata.Data{}
	per := contextdata.MaxSize / contextdata.MaxItems
	for i := range contextdata.MaxItems {
		key := fmt.Sprintf("k%02d", i)
		d[key] = strings.Repeat("v", per-len(ctxwire.Prefix+key)-5)
	}
	stack := make([]string, contextdata.MaxCallIDs)
	for i := range stack {
		stack[i] = fmt.Sprintf("%0*d", contextdata.MaxCallIDSize, i)
	}
	d[contextdata.KeyCallIDStack] = stack
	if err := ctxwire.Check(ctxwire.Headers(d)); err != nil {
		t.Fatalf("the context data is not at the limit: %v", err)
	}
	return contextdata.WithData(context.Background(), d)
}

// TestContextDataAtTheLimitTravelsEveryHop: context data a service accepts
// is context data it can send on, however many hops follow: a chain of
// three services passes data exactly at the limit, with a full call-id
// stack, from end to end. What a handler adds beyond the limit fails its
// call before it is sent, with MalformedRequest naming the limit, which is
// what its own caller gets too.
func TestContextDataAtTheLimitTravelsEveryHop(t *testing.T) {
	c := newClient(t, waitBound)
	relay := func(next string) func(r *entrypoint.Registry) {
		return func(r *entrypoint.Registry) {
			rpc.Handle(r, "relay", func(ctx context.Context, _ struct{}) (string, error) {
				if next == "" {
					stack := contextdata.CallIDStack(ctx)
					return fmt.Sprintf("%d items, %d call ids, the last %s", len(contextdata.From(ctx)), len(stack),
						strings.SplitN(stack[len(stack)-1], ".", 3)[1]), nil
				}
				return rpc.Call[string](ctx, c.Proxy(next), "relay", nil)
			})
			rpc.Handle(r, "grow", func(ctx context.Context, _ struct{}) (string, error) {
				return rpc.Call[string](contextdata.With(ctx, "one_more", "x"), c.Proxy(next), "relay", nil)
			})
		}
	}
	for service, next := range map[string]string{"ctx_hop_a": "ctx_hop_b", "ctx_hop_b": "ctx_hop_c", "ctx_hop_c": ""} {
		serveWith(t, rpc.ServerConfig{Service: service, Pool: worker.NewPool(1),
			ParentCallsTracked: contextdata.MaxCallIDs - 1}, relay(next))
	}

	got, err := rpc.Call[string](atTheLimit(t), c.Proxy("ctx_hop_a"), "relay", nil)
	if want := fmt.Sprintf("%d items, %d call ids, the last relay", contextdata.MaxItems+1, contextdata.MaxCallIDs); err != nil || got != want {
		t.Fatalf("context data at the limit through three hops: %q, %v; want %q", got, err, want)
	}

	_, err = rpc.Call[string](atTheLimit(t), c.Proxy("ctx_hop_a"), "grow", nil)
	var re *rpc.RemoteError
	if !errors.As(err, &re) || re.ExcType != "MalformedRequest" || !strings.Contains(re.Value, "over the limit of 64 (contextdata.MaxItems") {
		t.Fatalf("a handler adding an item over the limit: %v; want MalformedRequest naming contextdata.MaxItems", err)
	}

	over := contextdata.With(atTheLimit(t), "one_more", "x")
	_, err = rpc.Call[string](over, c.Proxy("ctx_hop_a"), "relay", nil)
	if !errors.Is(err, rpc.ErrMalformedRequest) || !strings.Contains(err.Error(), "contextdata.MaxItems") {
		t.Fatalf("a call over the limit: %v; want it refused before it is sent, as MalformedRequest naming the limit", err)
	}
}
