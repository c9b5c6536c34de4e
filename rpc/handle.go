package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/introspection"
)

// rpcMethod is a registered RPC method: the entrypoint rpc.Handle adds to a
// service's registry.
type rpcMethod struct {
	name     string
	doc      string
	expected []error
	binder   *binder
	out      reflect.Type
	call     func(ctx context.Context, in reflect.Value) (any, error)
}

// EntrypointName is the method's name on the wire: "<service>.<name>" is its routing key.
func (m *rpcMethod) EntrypointName() string { return m.name }

// Describe describes the method: its arguments in positional order and the
// errors it declared with Expected.
func (m *rpcMethod) Describe() entrypoint.Description {
	args := []any{}
	for _, p := range m.params() {
		args = append(args, map[string]any{"name": p.Name, "required": p.Required, "type": p.Type.String()})
	}
	return entrypoint.Description{Kind: entrypoint.KindRPC, Name: m.name, Doc: m.doc,
		Detail: map[string]any{"args": args, "errors": describeErrors(m.expected)}}
}

// describeErrors are expected errors as their callers receive them.
func describeErrors(errs []error) []any {
	out := []any{}
	for _, e := range errs {
		re := toRemote(e)
		out = append(out, map[string]any{"exc_type": re.ExcType, "exc_path": re.ExcPath})
	}
	return out
}

// params lists the method's arguments in positional order: a positional
// call fills them in this order.
func (m *rpcMethod) params() []introspection.Param {
	out := make([]introspection.Param, len(m.binder.fields))
	st := m.binder.typ
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	for i, f := range m.binder.fields {
		out[i] = introspection.Param{Name: f.name, Required: f.required, Type: st.FieldByIndex(f.index).Type}
	}
	return out
}

// isExpected reports whether err is one of the errors the method declared with
// Expected: part of its contract, logged at info rather than as a failure.
func (m *rpcMethod) isExpected(err error) bool {
	for _, e := range m.expected {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Option configures a method registered with Handle or HandleRaw; it prints
// as the call that made it.
type Option interface {
	apply(*rpcMethod)
	String() string
}

type option struct {
	name string
	fn   func(*rpcMethod)
}

func (o option) apply(m *rpcMethod) { o.fn(m) }
func (o option) String() string     { return o.name }

// Doc describes the method for people and tools.
func Doc(text string) Option {
	return option{fmt.Sprintf("rpc.Doc(%q)", text), func(m *rpcMethod) { m.doc = text }}
}

// Expected declares errors that are part of the method's contract (matched
// with errors.Is, so a relayed RemoteError counts only when its exc_path is
// the declared error's too; see RemoteError.Is): the caller still receives
// them as a RemoteError, unredacted, but they are logged at info and are not
// failures in traces and metrics.
func Expected(errs ...error) Option {
	return option{"rpc.Expected(" + errorList(errs) + ")", func(m *rpcMethod) { m.expected = append(m.expected, errs...) }}
}

// errorList quotes the messages of errs, comma-separated, for an option's String.
func errorList(errs []error) string {
	quoted := make([]string, len(errs))
	for i, err := range errs {
		quoted[i] = fmt.Sprintf("%q", fmt.Sprint(err))
	}
	return strings.Join(quoted, ", ")
}

// Handle registers fn as the RPC method name of the service that owns r.
//
// In must be a struct (or a pointer to one): a caller's keyword arguments fill
// its fields by JSON name, positional arguments fill its fields in order, so a
// nameko caller's calc.add(1, 2) works. Its fields are those encoding/json
// fills, the fields of embedded structs included. A field is optional only
// when it is a pointer or tagged omitempty or omitzero; missing, unknown or
// mistyped arguments, and null for a required one (unless its type is an
// interface or decodes JSON itself), are refused with IncorrectSignature
// before fn runs. Out is encoded as JSON for the reply.
//
// A method without arguments takes struct{}. An In that no call could fill
// (not a struct, a struct whose fields are all unexported or tagged
// json:"-", a field of a type JSON cannot decode into such as a channel or
// func, or two fields with one JSON name) fails the registry
// (Registry.Fail), naming the problem, and
// so does the name "_hypha_introspect", which is reserved for the method
// every Hypha service answers with its description (see package introspect).
func Handle[In, Out any](r *entrypoint.Registry, name string, fn func(context.Context, In) (Out, error), opts ...Option) {
	if name == introspection.Method {
		r.Fail(fmt.Errorf("service %q: rpc.Handle(%q): the name is reserved for the method every Hypha service answers "+
			"with its description: give the method another name", r.Service(), name))
		return
	}
	handle(r, name, fn, opts...)
}

func init() {
	introspection.RPC = describeMethod
	introspection.WireError = func(err error) (string, string, string) {
		re := toRemote(err)
		return re.ExcType, re.ExcPath, re.Value
	}
	introspection.Handle = handleIntrospection
}

// handleIntrospection registers the built-in method on r (an
// *entrypoint.Registry), answering with body; the framework does so for
// every service, through package introspect.
func handleIntrospection(r any, body []byte) {
	handle(r.(*entrypoint.Registry), introspection.Method, func(context.Context, struct{}) (json.RawMessage, error) {
		return body, nil
	}, Doc("Describes the service's RPC methods and event handlers."))
}

// describeMethod is what e says of itself, when it is a typed or raw method.
func describeMethod(e any) (introspection.RPCMethod, bool) {
	switch m := e.(type) {
	case *rpcMethod:
		return introspection.RPCMethod{Name: m.name, Doc: m.doc, Params: m.params(), In: m.binder.typ, Out: m.out,
			Expected: append([]error(nil), m.expected...)}, true
	case *rawMethod:
		return introspection.RPCMethod{Name: m.name, Doc: m.method.doc, Raw: true,
			Expected: append([]error(nil), m.method.expected...)}, true
	}
	return introspection.RPCMethod{}, false
}

func handle[In, Out any](r *entrypoint.Registry, name string, fn func(context.Context, In) (Out, error), opts ...Option) {
	b, err := newBinder(reflect.TypeFor[In]())
	if err != nil {
		r.Fail(fmt.Errorf("service %q: rpc.Handle(%q): %w", r.Service(), name, err))
		return
	}
	if name == "" {
		r.Fail(fmt.Errorf("service %q: rpc.Handle needs a method name", r.Service()))
		return
	}
	m := &rpcMethod{
		name:   name,
		binder: b,
		out:    reflect.TypeFor[Out](),
		call: func(ctx context.Context, in reflect.Value) (any, error) {
			return fn(ctx, in.Interface().(In))
		},
	}
	for _, o := range opts {
		o.apply(m)
	}
	r.Add(m)
}
