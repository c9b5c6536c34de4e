package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"

	"github.com/hypha-go/hypha/contextdata"
)

// Local failures.
var (
	// ErrServiceNotFound: no queue took the request, so no instance of the
	// service has ever run on this broker (the mandatory publish came back).
	// On the wire, a service relaying it uses nameko's name, UnknownService.
	ErrServiceNotFound = errors.New("hypha: service not found")
	// ErrTimeout: no reply came before the call's deadline. It also matches
	// context.DeadlineExceeded.
	ErrTimeout error = timeoutError{}
	// ErrClosed: the client was used after Close.
	ErrClosed = errors.New("hypha: rpc client closed")
	// ErrTooManyCalls: the client already has Config.MaxInFlight calls
	// waiting for their reply (RPC_MAX_IN_FLIGHT in a service); wait for
	// some to end, or raise the bound.
	ErrTooManyCalls = errors.New("hypha: too many calls in flight")
)

type timeoutError struct{}

func (timeoutError) Error() string { return "hypha: rpc timeout" }

// Is makes errors.Is(ErrTimeout, context.DeadlineExceeded) hold.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Errors the framework sends, as nameko names them. errors.Is(err, ErrMethodNotFound)
// holds for any RemoteError of that type, from a Hypha or a nameko service.
var (
	ErrMethodNotFound      = frameworkError("MethodNotFound")
	ErrIncorrectSignature  = frameworkError("IncorrectSignature")
	ErrMalformedRequest    = frameworkError("MalformedRequest")
	ErrUnserializableValue = &RemoteError{ExcType: "UnserializableValueError", ExcPath: "nameko.exceptions.UnserializableValueError"}
)

// exc_type names of errors that have no sentinel of their own.
const (
	errUnknownServiceExcType = "UnknownService"
	errUnknownServiceExcPath = "nameko.exceptions." + errUnknownServiceExcType
	panicExcType             = "Panic"
	plainExcType             = "Error"
	// rpcErrorPath is the exc_path of the plain errors this package makes.
	rpcErrorPath = "github.com/hypha-go/hypha/rpc." + plainExcType
)

// errPanic matches the error a recovered panic becomes.
var errPanic = &RemoteError{ExcType: panicExcType, ExcPath: "runtime.Panic"}

func frameworkError(name string) *RemoteError {
	return &RemoteError{ExcType: name, ExcPath: "nameko.exceptions." + name}
}

// RemoteError is an error that came over the wire from the service that
// handled a call, in nameko's four fields.
type RemoteError struct {
	ExcType string `json:"exc_type"` // the error's type name, e.g. "ZeroDivisionError"
	ExcPath string `json:"exc_path"` // dotted path, e.g. "builtins.ZeroDivisionError"
	ExcArgs []any  `json:"exc_args"` // the error's arguments, JSON-safe
	Value   string `json:"value"`    // the error message
}

// NewError defines an error that crosses the wire with the given exc_type and
// message. Define it once as a package-level variable and share it: a handler
// returns it (or wraps it), and errors.Is on the caller's side matches it by
// exc_type and exc_path. Its exc_path is the defining package's path plus
// excType, so two packages' errors of one exc_type stay apart.
func NewError(excType, message string) *RemoteError {
	return &RemoteError{
		ExcType: excType,
		ExcPath: callerPackage() + "." + excType,
		ExcArgs: []any{message},
		Value:   message,
	}
}

// Error returns "<exc_type>: <value>", with "RemoteError" for a missing
// exc_type, so that even an empty error object from a peer reads as one.
func (e *RemoteError) Error() string {
	name := e.ExcType
	if name == "" {
		name = "RemoteError"
	}
	if e.Value == "" {
		return name
	}
	return name + ": " + e.Value
}

// MarshalJSON encodes the four fields nameko expects, exc_args always as a
// list: a nameko client calls registered exceptions with *exc_args, which
// fails on null.
func (e RemoteError) MarshalJSON() ([]byte, error) {
	type fields RemoteError // without this method
	if e.ExcArgs == nil {
		e.ExcArgs = []any{}
	}
	return json.Marshal(fields(e))
}

// UnmarshalJSON decodes nameko's error object; exc_args that is not a list
// (nameko always sends one) is kept as a list of that one value, so that
// the error itself is not lost.
func (e *RemoteError) UnmarshalJSON(b []byte) error {
	type fields RemoteError // without this method
	var raw struct {
		fields
		ExcArgs json.RawMessage `json:"exc_args"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*e = RemoteError(raw.fields)
	e.ExcArgs = nil
	if len(raw.ExcArgs) == 0 || string(raw.ExcArgs) == "null" {
		return nil
	}
	if json.Unmarshal(raw.ExcArgs, &e.ExcArgs) != nil {
		var v any
		if err := json.Unmarshal(raw.ExcArgs, &v); err != nil {
			return err
		}
		e.ExcArgs = []any{v}
	}
	return nil
}

// Is reports whether e is the error target defines. For a *RemoteError
// target the exc_types must be equal, and then:
//   - a target or an e without an exc_path matches by exc_type alone;
//   - a target whose exc_path is a Python built-in's or nameko's
//     ("builtins.ValueError", "nameko.exceptions.MethodNotFound") stands for
//     every error of that exc_type, as Python's "except ValueError" does;
//   - otherwise the exc_paths must be equal too, so that two errors that share
//     an exc_type but are defined in different places (two NewError values in
//     two Go packages, or a Python service's own exception class) differ.
//
// ErrServiceNotFound matches nameko's UnknownService.
func (e *RemoteError) Is(target error) bool {
	t, ok := target.(*RemoteError)
	if !ok {
		return target == ErrServiceNotFound && e.ExcType == errUnknownServiceExcType
	}
	if t.ExcType != e.ExcType {
		return false
	}
	if t.ExcPath == "" || e.ExcPath == "" || isPythonClass(t.ExcPath) {
		return true
	}
	return t.ExcPath == e.ExcPath
}

// isPythonClass reports whether an exc_path names a Python built-in or a
// nameko exception, which a target uses to match a whole exc_type.
func isPythonClass(excPath string) bool {
	return strings.HasPrefix(excPath, "builtins.") || strings.HasPrefix(excPath, "nameko.")
}

// serviceNotFoundError names the missing service and relays as UnknownService.
type serviceNotFoundError struct{ service string }

func (e serviceNotFoundError) Error() string {
	return fmt.Sprintf("hypha: service %q not found: no queue is bound for it; is the service running?", e.service)
}
func (e serviceNotFoundError) Is(target error) bool { return target == ErrServiceNotFound }
func (e serviceNotFoundError) ExcType() string      { return errUnknownServiceExcType }
func (e serviceNotFoundError) ExcPath() string      { return errUnknownServiceExcPath }
func (e serviceNotFoundError) ExcArgs() []any       { return []any{e.service} }

// contextDataError is a call refused before it was sent because its
// context data is out of bounds (it wraps contextdata.ErrOutOfBounds). It
// is MalformedRequest, on the wire too (see toRemote): a handler that
// returns it tells its own caller that the request's context data, with
// what the handler added, was too much to send on.
type contextDataError struct {
	service, method string
	err             error
}

func (e contextDataError) Error() string {
	return fmt.Sprintf("hypha: calling %s.%s: %v: carry less context data", e.service, e.method, e.err)
}
func (e contextDataError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrMalformedRequest) hold.
func (e contextDataError) Is(target error) bool {
	t, ok := target.(*RemoteError)
	return ok && t.ExcType == ErrMalformedRequest.ExcType
}

// excTyper is implemented by Go error types that name their exc_type; ExcPath
// and ExcArgs are optional.
type excTyper interface{ ExcType() string }

// toRemote describes err as the wire error a caller receives. An error that
// joins several goes out under the exc_type of the first one that names one
// (as errors.As finds it), with the joined text, every line intact, as value.
func toRemote(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		out := &RemoteError{ExcType: re.ExcType, ExcPath: re.ExcPath, ExcArgs: re.ExcArgs, Value: re.Value}
		switch {
		case joins(err):
			// Each joined error keeps its own text, type name included:
			// dropping the first one's would leave the others' and mislead.
			out.Value = err.Error()
			out.ExcArgs = []any{out.Value}
		case err != error(re): // wrapped: the message says more than the definition
			// str(exc) in Python has no type name: drop the one re.Error() adds.
			out.Value = strings.Replace(err.Error(), re.Error(), re.Value, 1)
			out.ExcArgs = []any{out.Value}
		}
		if out.ExcArgs == nil {
			out.ExcArgs = []any{}
		}
		return out
	}
	out := &RemoteError{ExcType: plainExcType, ExcPath: typePath(err), Value: err.Error()}
	if errors.Is(err, contextdata.ErrOutOfBounds) {
		// A call or dispatch the handler made refused its context data:
		// the request's, with what the handler added, is too much to send on.
		out.ExcType, out.ExcPath = ErrMalformedRequest.ExcType, ErrMalformedRequest.ExcPath
	}
	var typed excTyper
	if errors.As(err, &typed) {
		out.ExcType = typed.ExcType()
		out.ExcPath = typePath(typed)
		if p, ok := typed.(interface{ ExcPath() string }); ok {
			out.ExcPath = p.ExcPath()
		}
		if a, ok := typed.(interface{ ExcArgs() []any }); ok {
			out.ExcArgs = a.ExcArgs()
		}
	}
	if out.ExcArgs == nil {
		out.ExcArgs = []any{out.Value}
	}
	return out
}

// joins reports whether err's chain holds an error that wraps several
// (errors.Join, or fmt.Errorf with more than one %w).
func joins(err error) bool {
	for err != nil {
		if _, ok := err.(interface{ Unwrap() []error }); ok {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// typePath is a value's Go type as a dotted path, e.g. "errors.errorString".
func typePath(v any) string {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// callerPackage is the import path of the package that called NewError.
func callerPackage() string {
	pc, _, _, ok := runtime.Caller(2)
	if !ok {
		return "unknown"
	}
	name := runtime.FuncForPC(pc).Name() // e.g. github.com/acme/calc.init or .glob..func1
	slash := strings.LastIndex(name, "/")
	if dot := strings.Index(name[slash+1:], "."); dot >= 0 {
		return name[:slash+1+dot]
	}
	return name
}
