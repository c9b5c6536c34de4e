package worker

import "fmt"

// PanicError is a panic recovered in a worker. Its Error is the panic's
// value; the stack is for the log and never crosses the wire.
type PanicError struct {
	Value any
	Stack []byte
}

// Error returns "panic: <value>".
func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }
