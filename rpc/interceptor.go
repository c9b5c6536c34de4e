package rpc

import (
	"context"
	"encoding/json"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
)

// CallInfo describes one call to the interceptors on either side.
type CallInfo struct {
	Service       string // the called service
	Method        string // the called method
	CorrelationID string
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
	// Exchange and RoutingKey are where the request is published.
	Exchange   string
	RoutingKey string
	// BodySize is the request body's size in bytes.
	BodySize int
	// ReplyHeaders are the reply's AMQP headers. A server interceptor may add
	// to them (trace context); on the client they are as received, once the
	// reply has come.
	ReplyHeaders map[string]any

	method  *Method   // server side only
	started time.Time // client side only
}

// expectedErrorHeader marks a reply whose error the method declared with
// Expected, so that the caller's telemetry can tell it from a failure.
const expectedErrorHeader = "x-hypha-expected-error"

// ReplyIsExpectedError reports whether the reply to a call carried an error
// that the called Hypha method declared with Expected. It is false for
// successes, unexpected errors and replies from services that do not say.
func (c *CallInfo) ReplyIsExpectedError() bool {
	v, _ := c.ReplyHeaders[expectedErrorHeader].(bool)
	return v
}

// IsExpected reports whether err is one the called method declared with
// Expected. It is always false on the client side.
func (c *CallInfo) IsExpected(err error) bool {
	return c.method != nil && c.method.IsExpected(err)
}

// ServerHandler runs the rest of a server-side call and returns the result to
// encode in the reply.
type ServerHandler func(ctx context.Context) (any, error)

// ServerInterceptor wraps every call that reaches one of a service's methods,
// and every call to a method the service lacks (next then returns
// MethodNotFound; CallInfo.Method is the name the caller sent), like nameko's
// worker_setup and worker_teardown: it can act before and after next, change
// the context, or answer without calling next. Requests refused as
// IncorrectSignature or MalformedRequest run no interceptor. A panic in it
// reaches the caller as Panic. It wraps RPC methods only, typed and raw
// (HandleRaw); entrypoint.Interceptor wraps every entrypoint kind.
type ServerInterceptor func(ctx context.Context, call *CallInfo, next ServerHandler) (any, error)

// ClientInvoker sends a call and waits for its result, the reply's JSON.
type ClientInvoker func(ctx context.Context, call *CallInfo) (json.RawMessage, error)

// ClientInterceptor wraps every call a client makes, from publishing the
// request to the reply or its failure.
type ClientInterceptor func(ctx context.Context, call *CallInfo, next ClientInvoker) (json.RawMessage, error)

func chainServer(interceptors []ServerInterceptor, call *CallInfo, last ServerHandler) ServerHandler {
	return entrypoint.Chain(last, interceptors, func(ic ServerInterceptor, next ServerHandler) ServerHandler {
		return func(ctx context.Context) (any, error) { return ic(ctx, call, next) }
	})
}

func chainClient(interceptors []ClientInterceptor, last ClientInvoker) ClientInvoker {
	return entrypoint.Chain(last, interceptors, func(ic ClientInterceptor, next ClientInvoker) ClientInvoker {
		return func(ctx context.Context, call *CallInfo) (json.RawMessage, error) { return ic(ctx, call, next) }
	})
}
