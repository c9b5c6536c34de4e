// Package entrypoint holds what every kind of entrypoint shares: the registry
// that a service's entrypoints are registered into, the worker pool that runs
// them, the Interceptor that wraps each run, and the Plugin interface through
// which the framework serves each kind.
//
// A service declares its entrypoints in a Register method; each kind's Handle
// (rpc.Handle, events.Handle, timer.Handle, httpentry.Handle) adds to the
// registry, and the framework hands the registry to every Plugin, which serves
// the entrypoints of its kind:
//
//	func (c *Calculator) Register(r *entrypoint.Registry) {
//		rpc.Handle(r, "add", c.Add)
//		timer.Handle(r, "report", time.Minute, c.Report)
//	}
//
// A new kind is a Plugin (and its own Handle adding an Entrypoint of its own
// type) given to the framework; the framework starts, drains, closes and
// describes it as it does the built-in ones. The package sits below rpc,
// events, timer, httpentry and framework so that none of them has to import
// another to meet here.
package entrypoint

import (
	"errors"
	"fmt"
)

// Entrypoint is one registered way into a service, of any kind: an RPC
// method, an event handler, a timer, an HTTP route, or one of a kind a Plugin
// added.
type Entrypoint interface {
	// EntrypointName is the name the entrypoint is known by on the wire; it is
	// unique within a service.
	EntrypointName() string
	// Describe says what the entrypoint is, for introspection.
	Describe() Description
}

// Registrar is implemented by every service: its Register method declares the
// service's entrypoints.
type Registrar interface {
	Register(r *Registry)
}

// Registry collects a service's entrypoints. It is filled once, before the
// service starts, and is not safe for concurrent use.
type Registry struct {
	service string
	entries []Entrypoint
	names   map[string]bool
	errs    []error
}

// NewRegistry returns an empty registry for the named service.
func NewRegistry(service string) *Registry {
	return &Registry{service: service, names: map[string]bool{}}
}

// Service is the name of the service whose entrypoints the registry holds.
func (r *Registry) Service() string { return r.service }

// Add registers e. A second entrypoint with the same name is recorded as an
// error, which Err reports and which stops the service from starting.
func (r *Registry) Add(e Entrypoint) {
	name := e.EntrypointName()
	if r.names[name] {
		r.Fail(fmt.Errorf("service %q: entrypoint %q is registered twice: give each a unique name", r.service, name))
		return
	}
	r.names[name] = true
	r.entries = append(r.entries, e)
}

// Fail records a registration error; the service will not start while the
// registry holds one.
func (r *Registry) Fail(err error) { r.errs = append(r.errs, err) }

// Entrypoints returns the registered entrypoints in registration order.
func (r *Registry) Entrypoints() []Entrypoint { return append([]Entrypoint(nil), r.entries...) }

// Err returns every registration error, joined, or nil.
func (r *Registry) Err() error { return errors.Join(r.errs...) }

// Of returns the entrypoints of r that have type T, in registration order.
func Of[T Entrypoint](r *Registry) []T {
	var out []T
	for _, e := range r.entries {
		if t, ok := e.(T); ok {
			out = append(out, t)
		}
	}
	return out
}
