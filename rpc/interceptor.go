package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
)

// CallInfo describes one call to the interceptors on either side: the Spec
// of their entrypoint.Call, whose Kind is entrypoint.KindRPC.
//
// On the server the interceptors wrap every call that reaches one of a
// service's methods, typed and raw (HandleRaw), and every call to a method
// the service lacks (Unknown is then set, and next returns
// MethodNotFound), like nameko's worker_setup and worker_teardown. Requests
// refused as IncorrectSignature or MalformedRequest run no interceptor. A
// panic in one reaches the caller as Panic. On the client they wrap every
// call, from publishing the request to the reply or its failure.
type CallInfo struct {
	Service       string // the called service
	Method        string // the called method
	CorrelationID string
	// Caller is the calling client's Config.Owner: in a service, the
	// service's name. Client side only.
	Caller string
	// Headers are the request's AMQP headers. A client interceptor may add to
	// them before the request is sent (trace context, for one); on the server
	// they are as received.
	Headers map[string]any
	// Deadline is when the caller stops waiting; zero when it sent none.
	Deadline time.Time
	// Idempotent says the caller made the call through Proxy.Idempotent: a
	// request lost with the connection is sent again even when
	// Config.NoResend is set. Client side only.
	Idempotent bool
	// Unknown says the service has no method of that name: the call is
	// answered MethodNotFound. Server side only.
	Unknown bool
	// Exchange and RoutingKey are where the request is published.
	Exchange   string
	RoutingKey string
	// BodySize is the request body's size in bytes.
	BodySize int
	// ReplyHeaders are the reply's AMQP headers. A server interceptor may add
	// to them (trace context); on the client they are as received, once the
	// reply has come.
	ReplyHeaders map[string]any
	// Result is the call's result once next has returned: on the server the
	// method's return value, before it is encoded (nil for a raw method); on
	// the client the reply's result as a json.RawMessage. An interceptor may
	// replace it, or set it when it answers without calling next; on the
	// client a value other than a json.RawMessage is encoded as JSON.
	Result any

	method  *rpcMethod // server side only
	started time.Time  // client side only
}

// expectedErrorHeader marks a reply whose error the method declared with
// Expected, so that the caller's telemetry can tell it from a failure.
const expectedErrorHeader = "x-hypha-expected-error"

// replyIsExpectedError reports whether the reply to a call carried an error
// that the called Hypha method declared with Expected. It is false for
// successes, unexpected errors and replies from services that do not say.
func (c *CallInfo) replyIsExpectedError() bool {
	v, _ := c.ReplyHeaders[expectedErrorHeader].(bool)
	return v
}

// IsExpected reports whether err is one the called method declared with
// Expected. It is always false on the client side.
func (c *CallInfo) IsExpected(err error) bool {
	return c.method != nil && c.method.isExpected(err)
}

// Relayed reports whether err, which the method of a server-side call
// returned to the interceptor that was given ctx, is an error a downstream
// service sent in reply to a call the method made, passed on as it came.
func (c *CallInfo) Relayed(ctx context.Context, err error) bool {
	return c.method != nil && isRelayed(ctx, err)
}

// serverCall is the entrypoint.Call of a server-side call.
func (c *CallInfo) serverCall() *entrypoint.Call {
	return &entrypoint.Call{Kind: entrypoint.KindRPC, Service: c.Service, Name: c.Method, Headers: c.Headers,
		Spec: c, Expected: c.IsExpected}
}

// clientCall is the entrypoint.Call of an outgoing call.
func (c *CallInfo) clientCall() *entrypoint.Call {
	return &entrypoint.Call{Kind: entrypoint.KindRPC, Client: true, Service: c.Service, Name: c.Method,
		Headers: c.Headers, Spec: c, Expected: func(error) bool { return c.replyIsExpectedError() }}
}

// ExcType names err as a caller sees it: the exc_type of a *RemoteError, or
// of the error a server would send for err; for a call's local failures
// "UnknownService", "Timeout" or "Closed".
func ExcType(err error) string {
	switch {
	case errors.Is(err, ErrServiceNotFound):
		return errUnknownServiceExcType
	case errors.Is(err, ErrTimeout):
		return "Timeout"
	case errors.Is(err, ErrClosed):
		return "Closed"
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return re.ExcType
	}
	return toRemote(err).ExcType
}

// clientResult is the result an interceptor chain left in call.Result.
func clientResult(call *CallInfo) (json.RawMessage, error) {
	switch r := call.Result.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return r, nil
	default:
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("calling %s.%s: the result an interceptor set (%T) cannot be encoded as JSON: %w",
				call.Service, call.Method, r, err)
		}
		return b, nil
	}
}
