// Package introspection is the route by which package introspect reads what
// rpc's and events' entrypoints hold but do not export, and registers the
// built-in method. Package rpc fills RPC, WireError and Handle, package
// events fills Event, and package introspect fills Register, each in its
// init; a package that imports introspect therefore finds them all set.
//
// The registries and entrypoints here are typed any, since a package under
// internal/ imports no project package outside it: they are an
// *entrypoint.Registry and an entrypoint.Entrypoint.
package introspection

import "reflect"

// Method is the name of the built-in RPC method every Hypha service answers
// with a description of its entrypoints. It has no dot, since requests are
// routed by "<service>.<method>".
const Method = "_hypha_introspect"

// RPCMethod is what an RPC method says of itself.
type RPCMethod struct {
	Name string
	Doc  string
	// Raw marks a method registered with rpc.HandleRaw: it has no Params,
	// In or Out.
	Raw      bool
	Params   []Param      // in positional order
	In, Out  reflect.Type // the types of its arguments and of its result
	Expected []error      // the errors declared with rpc.Expected, in order
}

// Param is one argument of an RPC method: a field of its input struct.
type Param struct {
	Name     string       // the argument's name, the field's JSON name
	Required bool         // neither a pointer nor tagged omitempty or omitzero
	Type     reflect.Type // the field's type
}

// Handler is what an event handler says of itself.
type Handler struct {
	Name           string
	Source         string
	EventType      string
	HandlerType    string // "service pool", "singleton" or "broadcast"
	Queue          string // its queue's name
	Reliable       bool
	RequeueOnError bool
	Payload        reflect.Type // the type the payload is decoded into
}

var (
	// RPC describes e, when it is an RPC method (typed or raw).
	RPC func(e any) (RPCMethod, bool)
	// WireError is err as a caller receives it: its exc_type, exc_path and
	// value.
	WireError func(err error) (excType, excPath, value string)
	// Handle registers the built-in method on registry r, answering with
	// body, a JSON document.
	Handle func(r any, body []byte)
	// Event describes e, when it is an event handler of service.
	Event func(e any, service string) (Handler, bool)
	// Register adds the built-in method to registry r, answering with the
	// description of what r holds now; the framework calls it for every
	// service after the service registered its entrypoints.
	Register func(r any)
)
