// Package introspect describes a service's entrypoints on the wire: every
// Hypha service answers the built-in RPC method Method
// ("_hypha_introspect") with a Description of its RPC methods (names, docs,
// JSON Schemas of their arguments and results, positional order, expected
// errors), its event handlers (source, event type, handler type, queue), and
// every entrypoint of every kind as it describes itself
// (entrypoint.Entrypoint's Describe): timers and HTTP routes too, and kinds
// an app added. The framework registers the method for every service, one
// with only event handlers included; the `hypha` command uses it for inspect,
// shell completion and error messages.
//
//	desc, err := introspect.Fetch(ctx, client.Proxy("calculator"))
//
// A nameko service does not answer the method: Fetch then returns an error
// matching ErrNotHypha.
package introspect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/hypha-go/hypha/entrypoint"
	_ "github.com/hypha-go/hypha/events" // fills introspection.Event
	"github.com/hypha-go/hypha/internal/introspection"
	"github.com/hypha-go/hypha/rpc"
)

// Method is the name of the built-in method every Hypha service answers with
// its description. It has no dot, since requests are routed by
// "<service>.<method>"; rpc.Handle refuses the name.
const Method = introspection.Method

func init() { introspection.Register = func(r any) { register(r.(*entrypoint.Registry)) } }

// ErrNotHypha matches Fetch's error when the service answered that it has no
// introspection method: it is not a Hypha service (a nameko one, say).
var ErrNotHypha = errors.New("hypha: the service does not answer " + Method + " (not a Hypha service: a nameko one?)")

// Description is what a service says of itself.
type Description struct {
	Service  string        `json:"service"`
	Methods  []MethodInfo  `json:"methods"`        // in registration order, the built-in method left out
	Handlers []HandlerInfo `json:"event_handlers"` // in registration order
	// Entrypoints are every entrypoint of every kind, as each describes
	// itself, in registration order, the built-in method left out.
	Entrypoints []entrypoint.Description `json:"entrypoints"`
}

// MethodInfo describes one RPC method.
type MethodInfo struct {
	Name string `json:"name"`
	// Raw marks a method registered with rpc.HandleRaw: it reads its body
	// itself, so it has no argument list or schemas.
	Raw    bool           `json:"raw,omitempty"`
	Doc    string         `json:"doc,omitempty"`
	Args   []Arg          `json:"args"`          // in positional order
	Input  map[string]any `json:"args_schema"`   // JSON Schema of the keyword arguments, an object
	Result map[string]any `json:"result_schema"` // JSON Schema of the result
	Errors []ErrorInfo    `json:"errors"`        // the errors declared with rpc.Expected
}

// Arg is one argument of a method.
type Arg struct {
	Name     string `json:"name"`
	Required bool   `json:"required"`
	Type     string `json:"type"` // the Go type, e.g. "float64"
}

// ErrorInfo is an expected error as the caller receives it.
type ErrorInfo struct {
	ExcType string `json:"exc_type"`
	ExcPath string `json:"exc_path"`
	Value   string `json:"value,omitempty"`
}

// HandlerInfo describes one event handler.
type HandlerInfo struct {
	Name           string         `json:"name"`
	Source         string         `json:"source"`
	EventType      string         `json:"event_type"`
	HandlerType    string         `json:"handler_type"` // "service pool", "singleton" or "broadcast"
	Queue          string         `json:"queue"`
	Reliable       bool           `json:"reliable_delivery"`
	RequeueOnError bool           `json:"requeue_on_error"`
	Payload        map[string]any `json:"payload_schema"`
}

// Signature is the method's arguments as Python would write them, e.g.
// "add(a, b, c=None)": required ones plain, optional ones with "=None".
func (m MethodInfo) Signature() string {
	s := m.Name + "("
	for i, a := range m.Args {
		if i > 0 {
			s += ", "
		}
		s += a.Name
		if !a.Required {
			s += "=None"
		}
	}
	return s + ")"
}

// Method returns the method named name, and whether there is one.
func (d Description) Method(name string) (MethodInfo, bool) {
	i := slices.IndexFunc(d.Methods, func(m MethodInfo) bool { return m.Name == name })
	if i < 0 {
		return MethodInfo{}, false
	}
	return d.Methods[i], true
}

// Describe describes the entrypoints registered in r.
func Describe(r *entrypoint.Registry) Description {
	d := Description{Service: r.Service(), Methods: []MethodInfo{}, Handlers: []HandlerInfo{},
		Entrypoints: []entrypoint.Description{}}
	var raw []MethodInfo
	for _, e := range r.Entrypoints() {
		m, isMethod := introspection.RPC(e)
		if isMethod && m.Name == Method && !m.Raw {
			continue // the built-in method
		}
		d.Entrypoints = append(d.Entrypoints, e.Describe())
		switch h, isHandler := introspection.Event(e, r.Service()); {
		case isMethod && m.Raw:
			raw = append(raw, methodInfo(m))
		case isMethod:
			d.Methods = append(d.Methods, methodInfo(m))
		case isHandler:
			d.Handlers = append(d.Handlers, HandlerInfo{
				Name: h.Name, Source: h.Source, EventType: h.EventType, HandlerType: h.HandlerType,
				Queue: h.Queue, Reliable: h.Reliable, RequeueOnError: h.RequeueOnError, Payload: schemaOf(h.Payload),
			})
		}
	}
	d.Methods = append(d.Methods, raw...) // typed methods first, then raw ones
	return d
}

// methodInfo describes an RPC method as its callers see it.
func methodInfo(m introspection.RPCMethod) MethodInfo {
	info := MethodInfo{Name: m.Name, Raw: m.Raw, Doc: m.Doc, Args: []Arg{}, Errors: []ErrorInfo{}}
	if !m.Raw {
		info.Input, info.Result = schemaOf(m.In), schemaOf(m.Out)
	}
	for _, p := range m.Params {
		info.Args = append(info.Args, Arg{Name: p.Name, Required: p.Required, Type: p.Type.String()})
	}
	for _, e := range m.Expected {
		excType, excPath, value := introspection.WireError(e)
		info.Errors = append(info.Errors, ErrorInfo{ExcType: excType, ExcPath: excPath, Value: value})
	}
	return info
}

// register adds the built-in method to r, answering with the description of
// what r holds now, described and encoded once. The framework calls it, as
// introspection.Register, for every service after the service registered
// its entrypoints.
func register(r *entrypoint.Registry) {
	body, err := json.Marshal(Describe(r))
	if err != nil { // a schema holds only JSON values: this cannot happen
		r.Fail(fmt.Errorf("service %q: describing it: %w", r.Service(), err))
		return
	}
	introspection.Handle(r, body)
}

// Fetch asks the service behind p for its description. A service that
// answers MethodNotFound is not a Hypha service: the error matches
// ErrNotHypha. When instances of one service differ (Go and Python ones
// sharing its queue), another instance may answer a second call: Fetch asks
// up to three times before it concludes.
func Fetch(ctx context.Context, p rpc.Caller) (Description, error) {
	var err error
	for range 3 {
		var d Description
		err = p.Call(ctx, Method, nil, &d)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, rpc.ErrMethodNotFound) {
			return Description{}, err
		}
	}
	return Description{}, fmt.Errorf("%w; it answered %v", ErrNotHypha, err)
}
