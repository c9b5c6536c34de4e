// Package contextdata carries call-scoped data across service calls, as nameko's
// context data does: the call-id stack, the user id, user agent, language, auth
// token and any custom keys.
//
// A caller puts data on its context; the RPC client and the event dispatcher
// send every item as an AMQP header "nameko.<key>"; the server strips the
// prefix, keeps every item for the handler's context, and the calls the
// handler makes carry it on:
//
//	ctx = contextdata.WithUserID(ctx, "u-42")
//	ctx = contextdata.With(ctx, "tenant", "acme")
//	err := calc.Call(ctx, "add", in, &out) // headers nameko.user_id, nameko.tenant
package contextdata

import (
	"context"
	"maps"

	"github.com/hypha-go/hypha/internal/ctxwire"
)

// Built-in keys, spelled as nameko spells them.
const (
	KeyCallIDStack = ctxwire.KeyCallIDStack
	KeyUserID      = "user_id"
	KeyUserAgent   = "user_agent"
	KeyLanguage    = "language"
	KeyAuthToken   = "auth_token"
)

// Data is the context data of one call: keys without the header prefix.
// Values are strings, numbers, booleans, lists and maps, as JSON would hold them.
type Data map[string]any

type ctxKey struct{}

// From returns a copy of the context data on ctx; the copy may be changed freely.
func From(ctx context.Context) Data {
	d, _ := ctx.Value(ctxKey{}).(Data)
	return maps.Clone(d)
}

// WithData returns a context carrying exactly d (nil values are dropped).
func WithData(ctx context.Context, d Data) context.Context {
	clean := make(Data, len(d))
	for k, v := range d {
		if v != nil {
			clean[k] = v
		}
	}
	return context.WithValue(ctx, ctxKey{}, clean)
}

// With returns a context whose data has key set to value; a nil value removes the key.
func With(ctx context.Context, key string, value any) context.Context {
	d := From(ctx)
	if d == nil {
		d = Data{}
	}
	d[key] = value
	return WithData(ctx, d)
}

// Get returns the value of key on ctx, or nil.
func Get(ctx context.Context, key string) any {
	d, _ := ctx.Value(ctxKey{}).(Data)
	return d[key]
}

// String returns the value of key on ctx when it is a string, else "".
func String(ctx context.Context, key string) string {
	s, _ := Get(ctx, key).(string)
	return s
}

// WithUserID sets the user id that travels with every call made from ctx.
func WithUserID(ctx context.Context, id string) context.Context { return With(ctx, KeyUserID, id) }

// UserID returns the user id carried by ctx, or "".
func UserID(ctx context.Context) string { return String(ctx, KeyUserID) }

// CallIDStack returns the call-id stack carried by ctx, oldest first.
func CallIDStack(ctx context.Context) []string {
	return stringList(Get(ctx, KeyCallIDStack))
}

// stringList reads a list of strings as it arrives from JSON or AMQP ([]any) or
// from Go code ([]string); anything else is an empty stack.
func stringList(v any) []string {
	switch l := v.(type) {
	case []string:
		return append([]string(nil), l...)
	case []any:
		out := make([]string, 0, len(l))
		for _, e := range l {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return []string{l}
	}
	return nil
}

// Outgoing returns the headers a message sent from ctx carries: each item of
// its context data as a header "nameko.<key>", with a call-id stack started
// with rootID when ctx has none (a caller outside any worker). An entrypoint
// kind of one's own sends them with its messages, as rpc and events do.
func Outgoing(ctx context.Context, rootID string) map[string]any {
	d := From(ctx)
	if len(CallIDStack(ctx)) == 0 {
		if d == nil {
			d = Data{}
		}
		d[KeyCallIDStack] = ctxwire.PushCallID(nil, rootID, 1)
	}
	return ctxwire.Headers(d)
}

// Incoming returns ctx carrying the context data of received headers (those
// named "nameko.<key>", the prefix stripped), with the receiving worker's
// callID pushed on the call-id stack, which keeps at most limit entries, the
// newest (nameko keeps PARENT_CALLS_TRACKED+1; a limit <= 0 or over
// MaxCallIDs keeps MaxCallIDs). A call id over MaxCallIDSize bytes keeps its
// end, where its uuid is. An entrypoint kind of one's own calls it for each
// message it runs a worker for, as rpc and events do.
func Incoming(ctx context.Context, headers map[string]any, callID string, limit int) context.Context {
	ctx = WithData(ctx, ctxwire.FromHeaders(headers))
	return With(ctx, KeyCallIDStack, ctxwire.PushCallID(CallIDStack(ctx), callID, limit))
}

// Bounds on the context data one message may carry. A message over them is
// refused on arrival (an error reply, or the dead-letter queue for an event)
// and a call that would send more fails before it is sent, with an error
// wrapping ErrOutOfBounds that names the bound.
//
// The call-id stack is bounded apart from the other items, because it is
// what each hop adds to: a worker keeps the items it received as they are
// and pushes its own id on the stack, which Incoming keeps within
// MaxCallIDs entries of at most MaxCallIDSize bytes. Context data accepted
// on arrival is thus, by construction, context data the worker can send
// on, however many hops follow.
const (
	// MaxItems is the most context items a message may carry, besides
	// the call-id stack.
	MaxItems = ctxwire.MaxItems
	// MaxSize is the most bytes of context data (keys and values, as their
	// text and numbers take on the wire, roughly) a message may carry,
	// besides the call-id stack.
	MaxSize = ctxwire.MaxSize
	// MaxCallIDs is the most entries the call-id stack may have; it bounds
	// PARENT_CALLS_TRACKED to MaxCallIDs-1.
	MaxCallIDs = ctxwire.MaxCallIDs
	// MaxCallIDSize is the most bytes one call id may take.
	MaxCallIDSize = ctxwire.MaxCallIDSize
)

// ErrOutOfBounds is wrapped by the error of an RPC call or event dispatch
// that would send context data over one of the bounds (MaxItems, MaxSize,
// MaxCallIDs, MaxCallIDSize); the error names the bound.
var ErrOutOfBounds = ctxwire.ErrOutOfBounds
