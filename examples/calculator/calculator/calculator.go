// Package calculator is the "calculator" example service: four RPC methods
// over two operands, and an expected error for division by zero.
package calculator

import (
	"context"
	"log/slog"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
)

// Name is the service's name on the wire.
const Name = "calculator"

// ErrDivisionByZero crosses the wire as exc_type "ZeroDivisionError", as
// Python's does.
var ErrDivisionByZero = rpc.NewError("ZeroDivisionError", "division by zero")

// Operands are the arguments of every method: calculator.add(1, 2) or
// calculator.add(a=1, b=2).
type Operands struct {
	A float64 `json:"a"`
	B float64 `json:"b"`
}

// Calculator is the service.
type Calculator struct{ log *slog.Logger }

// New builds the service; the container injects its logger.
func New(log *slog.Logger) *Calculator { return &Calculator{log: log} }

// Register declares the service's RPC methods.
func (c *Calculator) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "add", c.Add, rpc.Doc("Returns a + b."))
	rpc.Handle(r, "subtract", c.Subtract, rpc.Doc("Returns a - b."))
	rpc.Handle(r, "multiply", c.Multiply, rpc.Doc("Returns a × b."))
	rpc.Handle(r, "divide", c.Divide, rpc.Doc("Returns a ÷ b."), rpc.Expected(ErrDivisionByZero))
}

// Add returns a + b.
func (c *Calculator) Add(_ context.Context, in Operands) (float64, error) { return in.A + in.B, nil }

// Subtract returns a - b.
func (c *Calculator) Subtract(_ context.Context, in Operands) (float64, error) {
	return in.A - in.B, nil
}

// Multiply returns a × b.
func (c *Calculator) Multiply(_ context.Context, in Operands) (float64, error) {
	return in.A * in.B, nil
}

// Divide returns a ÷ b, or ErrDivisionByZero when b is 0.
func (c *Calculator) Divide(_ context.Context, in Operands) (float64, error) {
	if in.B == 0 {
		return 0, ErrDivisionByZero
	}
	return in.A / in.B, nil
}
