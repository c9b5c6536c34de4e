package calculator_test

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMethods(t *testing.T) {
	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	ctx := context.Background()
	tests := []struct {
		method string
		in     any
		want   float64
	}{
		{"add", calculator.Operands{A: 1, B: 2}, 3},
		{"subtract", rpc.Args(10, 4), 6},
		{"multiply", map[string]any{"a": 6, "b": 7}, 42},
		{"divide", calculator.Operands{A: 1, B: 4}, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			var got float64
			if err := hyphatest.Hook(t, app, calculator.Name, tt.method)(ctx, tt.in, &got); err != nil || got != tt.want {
				t.Fatalf("%s = %v, %v; want %v", tt.method, got, err, tt.want)
			}
		})
	}
}

func TestDivideByZeroIsExpected(t *testing.T) {
	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	_, err := rpc.Call[float64](context.Background(), app.Proxy(calculator.Name), "divide", rpc.Args(1, 0))
	var remote *rpc.RemoteError
	if !errors.Is(err, calculator.ErrDivisionByZero) || !errors.As(err, &remote) || remote.ExcType != "ZeroDivisionError" {
		t.Fatalf("divide by zero = %v, want ZeroDivisionError", err)
	}
}

func TestWrongArgumentsAreRefused(t *testing.T) {
	app := hyphatest.Start(t, framework.Service(calculator.Name, calculator.New))
	err := hyphatest.Hook(t, app, calculator.Name, "add")(context.Background(), map[string]any{"a": 1}, nil)
	if !errors.Is(err, rpc.ErrIncorrectSignature) {
		t.Fatalf("add(a=1) = %v, want IncorrectSignature", err)
	}
}
