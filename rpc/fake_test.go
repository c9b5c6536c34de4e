package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/hypha-go/hypha/rpc"
)

// fixedCaller answers every call with its reply, as a hand-written fake would.
type fixedCaller struct{ reply func() *rpc.Reply }

func (f fixedCaller) Call(_ context.Context, _ string, _, out any) error {
	return f.reply().Result(out)
}

func (f fixedCaller) CallAsync(context.Context, string, any) *rpc.Reply { return f.reply() }

func TestReplyWithDecodesAsAReply(t *testing.T) {
	type score struct {
		User  string  `json:"user"`
		Score float64 `json:"score"`
	}
	tests := []struct {
		name  string
		value any
		out   func() any
		want  string
	}{
		{"number", 30, func() any { return new(float64) }, "30"},
		{"struct into map", score{"ann", 3}, func() any { return new(map[string]any) }, "map[score:3 user:ann]"},
		{"map into struct", map[string]any{"user": "bob", "score": 2.5}, func() any { return new(score) }, "{User:bob Score:2.5}"},
		{"nil", nil, func() any { return new(*int) }, "<nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rpc.ReplyWith(tt.value)
			select {
			case <-r.Done():
			default:
				t.Fatal("a ReplyWith reply is not done")
			}
			out := tt.out()
			for range 2 { // the same outcome each time
				if err := r.Result(out); err != nil {
					t.Fatal(err)
				}
			}
			got := fmt.Sprintf("%+v", reflect.ValueOf(out).Elem().Interface())
			if got != tt.want {
				t.Errorf("Result = %s, want %s", got, tt.want)
			}
			if err := r.Result(nil); err != nil {
				t.Errorf("Result(nil) = %v", err)
			}
		})
	}
}

func TestReplyWithRefusesWhatJSONCannotHold(t *testing.T) {
	err := rpc.ReplyWith(make(chan int)).Result(nil)
	if err == nil {
		t.Fatal("ReplyWith(chan) succeeded")
	}
}

func TestReplyErrorFails(t *testing.T) {
	var out float64
	r := rpc.ReplyError(rpc.ErrTimeout)
	if err := r.Result(&out); !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("Result = %v, want ErrTimeout", err)
	}
	var wrong string
	if err := rpc.ReplyWith(1).Result(&wrong); err == nil {
		t.Fatal("decoding a number into a string succeeded")
	}
}

func TestCallTakesAnyCaller(t *testing.T) {
	ctx := context.Background()
	got, err := rpc.Call[float64](ctx, fixedCaller{func() *rpc.Reply { return rpc.ReplyWith(42) }}, "add", rpc.Args(40, 2))
	if err != nil || got != 42 {
		t.Fatalf("Call = %v, %v", got, err)
	}
	_, err = rpc.Call[float64](ctx, fixedCaller{func() *rpc.Reply { return rpc.ReplyError(rpc.ErrMethodNotFound) }}, "nope", nil)
	if !errors.Is(err, rpc.ErrMethodNotFound) {
		t.Fatalf("Call = %v, want MethodNotFound", err)
	}
}

// A fake Caller answers with ReplyWith and ReplyError, so code that takes an
// rpc.Caller can be unit-tested without a broker.
func ExampleReplyWith() {
	calc := fixedCaller{func() *rpc.Reply { return rpc.ReplyWith(6) }}
	product, err := rpc.Call[float64](context.Background(), calc, "multiply", rpc.Args(2, 3))
	fmt.Println(product, err)

	failing := fixedCaller{func() *rpc.Reply { return rpc.ReplyError(errors.New("calculator is down")) }}
	var out float64
	fmt.Println(failing.CallAsync(context.Background(), "multiply", rpc.Args(2, 3)).Result(&out))
	// Output:
	// 6 <nil>
	// calculator is down
}
