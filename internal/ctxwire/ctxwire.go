// Package ctxwire is the wire half of context data: how the items of
// package contextdata travel as message headers ("nameko.<key>", as nameko
// sends them), the bounds one message may carry, and the call-id stack's
// growth from hop to hop. It works on plain maps and lists, so that every
// entrypoint kind and the transports can use it; package contextdata holds
// the half a user writes.
package ctxwire

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/hypha-go/hypha/internal/tracehdr"
)

// Prefix starts the AMQP header name of every context item.
const Prefix = "nameko."

// KeyCallIDStack is the context item of the call-id stack, as nameko spells it.
const KeyCallIDStack = "call_id_stack"

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

// PushCallID returns the call-id stack stack with id at its end, keeping at
// most limit entries, the newest (nameko keeps PARENT_CALLS_TRACKED+1). A
// limit <= 0 or over MaxCallIDs keeps MaxCallIDs, and an id over
// MaxCallIDSize bytes keeps its end (where a call id's uuid is): the stack
// a worker sends on is then always within the bounds Check puts on it.
// stack is not changed.
func PushCallID(stack []string, id string, limit int) []string {
	if limit <= 0 || limit > MaxCallIDs {
		limit = MaxCallIDs
	}
	stack = append(stack[:len(stack):len(stack)], clipCallID(id))
	if len(stack) > limit {
		stack = stack[len(stack)-limit:]
	}
	return stack
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

// Headers encodes the context data d as AMQP headers, each item as
// "nameko.<key>"; nil items are left out.
func Headers(d map[string]any) map[string]any {
	h := make(map[string]any, len(d))
	for k, v := range d {
		if v != nil {
			h[Prefix+k] = v
		}
	}
	return h
}

// FromHeaders decodes the context data in AMQP headers: every header that starts
// with "nameko.", prefix stripped. Other headers are not context data, and
// neither are Hypha's own headers that a nameko service, which forwards
// every header it receives, sent back prefixed ("nameko.x-hypha-deadline",
// "nameko.traceparent"): a forwarded deadline or trace is not this call's.
func FromHeaders(h map[string]any) map[string]any {
	d := map[string]any{}
	for k, v := range h {
		if key, ok := item(k); ok && key != "" && v != nil {
			d[key] = v
		}
	}
	return d
}

// item returns the context data key of header k, and whether k carries one.
func item(k string) (string, bool) {
	key, ok := strings.CutPrefix(k, Prefix)
	if !ok || reflected(key) {
		return "", false
	}
	return key, true
}

// reflected reports whether key is one of Hypha's own headers as a nameko
// service forwards it.
func reflected(key string) bool {
	return tracehdr.IsTraceHeader(key) || strings.HasPrefix(key, "x-hypha-")
}

// Check reports an error, wrapping ErrOutOfBounds and naming the bound, when
// the context data in headers is over MaxItems or MaxSize, or its call-id
// stack is not a list of at most MaxCallIDs strings of at most
// MaxCallIDSize bytes. It counts what FromHeaders keeps, so that the
// headers of a call sent from a worker pass when the worker's did. Its
// errors name the bounds as package contextdata exports them.
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
		return fmt.Errorf("%w: the call-id stack (%s%s) is a %T, want a list of strings", ErrOutOfBounds, Prefix, KeyCallIDStack, v)
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
