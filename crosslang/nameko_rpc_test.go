package crosslang_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

func TestHyphaCallsRealNameko(t *testing.T) {
	uri := testbroker.URI(t)
	startNameko(t, uri, "rpc_service", "PyService", "rpc-py_service")

	c, err := rpc.Dial(context.Background(), rpc.Config{URI: uri, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	py := c.Proxy("py_service")
	ctx := context.Background()

	value := map[string]any{"n": 1.5, "s": "x", "l": []any{true, nil, "y"}}
	for name, in := range map[string]any{
		"kwargs":     map[string]any{"value": value},
		"positional": rpc.Args(value),
	} {
		var got any
		if err := py.Call(ctx, "echo", in, &got); err != nil {
			t.Errorf("echo (%s): %v", name, err)
		} else if !reflect.DeepEqual(got, value) {
			t.Errorf("echo (%s) = %#v, want %#v", name, got, value)
		}
	}
	if got, err := rpc.Call[string](ctx, py, "greet", rpc.Args("ann")); err != nil || got != "hello, ann" {
		t.Errorf("greet(ann) = %q, %v; want \"hello, ann\"", got, err)
	}
	if got, err := rpc.Call[string](ctx, py, "greet", map[string]any{"name": "bo", "greeting": "hi"}); err != nil || got != "hi, bo" {
		t.Errorf("greet(name=bo, greeting=hi) = %q, %v; want \"hi, bo\"", got, err)
	}

	_, err = rpc.Call[any](ctx, py, "fail", rpc.Args("bad"))
	var re *rpc.RemoteError
	if !errors.As(err, &re) {
		t.Errorf("fail(bad): %v (%T), want *rpc.RemoteError", err, err)
	} else if want := (&rpc.RemoteError{ExcType: "ValueError", ExcPath: "builtins.ValueError", ExcArgs: []any{"bad"}, Value: "bad"}); !reflect.DeepEqual(re, want) {
		t.Errorf("fail(bad) error = %#v, want %#v", re, want)
	}
	if _, err := rpc.Call[any](ctx, py, "no_such_method", nil); !errors.Is(err, rpc.ErrMethodNotFound) {
		t.Errorf("no_such_method: %v, want rpc.ErrMethodNotFound", err)
	}
	// nameko checks the signature before the worker runs.
	if _, err := rpc.Call[any](ctx, py, "greet", nil); !errors.As(err, &re) || re.ExcType != "IncorrectSignature" {
		t.Errorf("greet(): %v, want nameko's IncorrectSignature", err)
	}

	hctx := contextdata.WithUserID(ctx, "u-7")
	hctx = contextdata.With(hctx, "tenant", "acme")
	got, err := rpc.Call[struct {
		Data        map[string]any `json:"data"`
		CallIDStack []string       `json:"call_id_stack"`
	}](hctx, py, "context", nil)
	if err != nil {
		t.Fatalf("context(): %v", err)
	}
	if got.Data["user_id"] != "u-7" || got.Data["tenant"] != "acme" {
		t.Errorf("nameko's worker context data = %v; want user_id u-7 and tenant acme", got.Data)
	}
	if len(got.CallIDStack) != 2 || !strings.HasPrefix(got.CallIDStack[0], rpc.StandaloneOwner+".") ||
		!strings.HasPrefix(got.CallIDStack[1], "py_service.context.") {
		t.Errorf("nameko's call_id_stack = %q; want [%s.<...> py_service.context.<uuid>]", got.CallIDStack, rpc.StandaloneOwner)
	}
}
