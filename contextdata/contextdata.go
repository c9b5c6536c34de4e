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
	"errors"
	"fmt"
	"maps"
	"strings"
	"unicode/utf8"
)

// Built-in keys, spelled as nameko spells them.
const (
	KeyCallIDStack = "call_id_stack"
	KeyUserID      = "user_id"
	KeyUserAgent   = "user_agent"
	KeyLanguage    = "language"
	KeyAuthToken   = "auth_token"
)

// HeaderPrefix starts the AMQP header name of every context item.
const HeaderPrefix = "nameko."

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

// WithUserAgent sets the user agent that travels with every call made from ctx.
func WithUserAgent(ctx context.Context, ua string) context.Context {
	return With(ctx, KeyUserAgent, ua)
}

// UserAgent returns the user agent carried by ctx, or "".
func UserAgent(ctx context.Context) string { return String(ctx, KeyUserAgent) }

// WithLanguage sets the language that travels with every call made from ctx.
func WithLanguage(ctx context.Context, lang string) context.Context {
	return With(ctx, KeyLanguage, lang)
}

// Language returns the language carried by ctx, or "".
func Language(ctx context.Context) string { return String(ctx, KeyLanguage) }

// WithAuthToken sets the auth token that travels with every call made from ctx.
func WithAuthToken(ctx context.Context, token string) context.Context {
	return With(ctx, KeyAuthToken, token)
}

// AuthToken returns the auth token carried by ctx, or "".
func AuthToken(ctx context.Context) string { return String(ctx, KeyAuthToken) }

// CallIDStack returns the call-id stack carried by ctx, oldest first.
func CallIDStack(ctx context.Context) []string {
	return stringList(Get(ctx, KeyCallIDStack))
}

// PushCallID returns a context whose call-id stack ends with id and keeps at most
// limit entries, the newest (nameko keeps PARENT_CALLS_TRACKED+1). A limit
// <= 0 or over MaxCallIDs keeps MaxCallIDs, and an id over MaxCallIDSize
// bytes keeps its end (where a call id's uuid is): the stack a worker sends
// on is then always within the bounds Check puts on it.
func PushCallID(ctx context.Context, id string, limit int) context.Context {
	if limit <= 0 || limit > MaxCallIDs {
		limit = MaxCallIDs
	}
	stack := append(CallIDStack(ctx), clipCallID(id))
	if len(stack) > limit {
		stack = stack[len(stack)-limit:]
	}
	return With(ctx, KeyCallIDStack, stack)
}

// clipCallID keeps the last MaxCallIDSize bytes of id, cut on a character's start.
func clipCallID(id string) string {
	if len(id) <= MaxCallIDSize {
		return id
	}
	cut := len(id) - MaxCallIDSize
	for cut < len(id) && !utf8.RuneStart(id[cut]) {
		cut++
	}
	return id[cut:]
}

// Headers encodes d as AMQP headers, each item as "nameko.<key>".
func Headers(d Data) map[string]any {
	h := make(map[string]any, len(d))
	for k, v := range d {
		if v != nil {
			h[HeaderPrefix+k] = v
		}
	}
	return h
}

// FromHeaders decodes the context data in AMQP headers: every header that starts
// with "nameko.", prefix stripped. Other headers are not context data, and
// neither are Hypha's own headers that a nameko service, which forwards
// every header it receives, sent back prefixed ("nameko.x-hypha-deadline",
// "nameko.traceparent"): a forwarded deadline or trace is not this call's.
func FromHeaders(h map[string]any) Data {
	d := Data{}
	for k, v := range h {
		if key, ok := item(k); ok && key != "" && v != nil {
			d[key] = v
		}
	}
	return d
}

// item returns the context data key of header k, and whether k carries one.
func item(k string) (string, bool) {
	key, ok := strings.CutPrefix(k, HeaderPrefix)
	if !ok || reflected(key) {
		return "", false
	}
	return key, true
}

// reflected reports whether key is one of Hypha's own headers as a nameko
// service forwards it.
func reflected(key string) bool {
	switch key {
	case "traceparent", "tracestate", "baggage":
		return true
	}
	return strings.HasPrefix(key, "x-hypha-")
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

// Outgoing returns the headers a message sent from ctx carries: its context
// data, with a call-id stack started with rootID when ctx has none (a caller
// outside any worker).
func Outgoing(ctx context.Context, rootID string) map[string]any {
	d := From(ctx)
	if len(CallIDStack(ctx)) == 0 {
		if d == nil {
			d = Data{}
		}
		d[KeyCallIDStack] = []string{clipCallID(rootID)}
	}
	return Headers(d)
}

// Incoming returns ctx carrying the context data of received headers, with
// the receiving worker's callID pushed on the call-id stack, which keeps at
// most limit entries (see PushCallID).
func Incoming(ctx context.Context, headers map[string]any, callID string, limit int) context.Context {
	return PushCallID(WithData(ctx, FromHeaders(headers)), callID, limit)
}

// Bounds on the context data one message may carry. A message over them is
// refused on arrival (an error reply, or the dead-letter queue for an event)
// and a call that would send more fails before it is sent.
//
// The call-id stack is bounded apart from the other items, because it is
// what each hop adds to: a worker keeps the items it received as they are
// and pushes its own id on the stack, which PushCallID keeps within
// MaxCallIDs entries of at most MaxCallIDSize bytes. Context data accepted
// on arrival is thus, by construction, context data the worker can send
// on, however many hops follow.
const (
	// MaxItems is the most context items a message may carry, besides
	// the call-id stack.
	MaxItems = 64
	// MaxSize is the most bytes of context data (keys and values, as their
	// text and numbers take on the wire, roughly) a message may carry,
	// besides the call-id stack.
	MaxSize = 32 << 10
	// MaxCallIDs is the most entries the call-id stack may have; it bounds
	// PARENT_CALLS_TRACKED to MaxCallIDs-1.
	MaxCallIDs = 64
	// MaxCallIDSize is the most bytes one call id may take.
	MaxCallIDSize = 512
)

// ErrOutOfBounds is wrapped by the error of Check.
var ErrOutOfBounds = errors.New("hypha: context data out of bounds")

// Check reports an error, wrapping ErrOutOfBounds and naming the bound, when
// the context data in headers is over MaxItems or MaxSize, or its call-id
// stack is not a list of at most MaxCallIDs strings of at most
// MaxCallIDSize bytes. It counts what FromHeaders keeps, so that the
// headers of a call sent from a worker pass when the worker's did.
func Check(headers map[string]any) error {
	items, size := 0, 0
	for k, v := range headers {
		key, ok := item(k)
		if !ok {
			continue
		}
		if key == KeyCallIDStack {
			if err := checkStack(v); err != nil {
				return err
			}
			continue
		}
		items++
		size += len(k) + valueSize(v, 0)
	}
	switch {
	case items > MaxItems:
		return fmt.Errorf("%w: %d items, over the limit of %d (contextdata.MaxItems, the call-id stack not counted)",
			ErrOutOfBounds, items, MaxItems)
	case size > MaxSize:
		return fmt.Errorf("%w: %d bytes, over the limit of %d (contextdata.MaxSize, the call-id stack not counted)",
			ErrOutOfBounds, size, MaxSize)
	}
	return nil
}

// checkStack reports a call-id stack that is not a list of strings (or
// one string, or null), or one over MaxCallIDs or MaxCallIDSize.
func checkStack(v any) error {
	var ids []any
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		ids = []any{x}
	case []string:
		for _, id := range x {
			ids = append(ids, id)
		}
	case []any:
		ids = x
	default:
		return fmt.Errorf("%w: the call-id stack (%s%s) is a %T, want a list of strings", ErrOutOfBounds, HeaderPrefix, KeyCallIDStack, v)
	}
	if len(ids) > MaxCallIDs {
		return fmt.Errorf("%w: the call-id stack has %d entries, over the limit of %d (contextdata.MaxCallIDs)",
			ErrOutOfBounds, len(ids), MaxCallIDs)
	}
	for i, e := range ids {
		id, ok := e.(string)
		switch {
		case !ok:
			return fmt.Errorf("%w: call-id stack entry %d is a %T, want a string", ErrOutOfBounds, i, e)
		case len(id) > MaxCallIDSize:
			return fmt.Errorf("%w: call-id stack entry %d takes %d bytes, over the limit of %d (contextdata.MaxCallIDSize)",
				ErrOutOfBounds, i, len(id), MaxCallIDSize)
		}
	}
	return nil
}

// valueSize is about what v takes in an AMQP table; it stops counting once
// past MaxSize, and past a depth no header should reach.
func valueSize(v any, depth int) int {
	if depth > 32 {
		return MaxSize + 1
	}
	switch x := v.(type) {
	case string:
		return len(x) + 5
	case []byte:
		return len(x) + 5
	case []string:
		n := 5
		for _, s := range x {
			n += len(s) + 6
		}
		return n
	case []any:
		n := 5
		for _, e := range x {
			if n += valueSize(e, depth+1); n > MaxSize {
				break
			}
		}
		return n
	case map[string]any:
		n := 5
		for k, e := range x {
			if n += len(k) + 1 + valueSize(e, depth+1); n > MaxSize {
				break
			}
		}
		return n
	}
	return 9
}
