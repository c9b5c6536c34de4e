package rpc

import (
	"context"
	"encoding/json"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/transport"
)

// instrumentation names the tracer and meter of this package.
const instrumentation = "github.com/hypha-go/hypha/rpc"

// Attribute keys, as OpenTelemetry's semantic conventions for RPC and
// messaging spell them.
const (
	attrRPCSystem      = attribute.Key("rpc.system")
	attrRPCService     = attribute.Key("rpc.service")
	attrRPCMethod      = attribute.Key("rpc.method")
	attrMsgSystem      = attribute.Key("messaging.system")
	attrMsgDestination = attribute.Key("messaging.destination.name")
	attrMsgRoutingKey  = attribute.Key("messaging.rabbitmq.destination.routing_key")
	attrMsgConvID      = attribute.Key("messaging.message.conversation_id")
	attrMsgBodySize    = attribute.Key("messaging.message.body.size")
	attrExcType        = attribute.Key("exception.type")
	attrExcMessage     = attribute.Key("exception.message")
)

// ServerTracing returns a server interceptor that continues the caller's trace
// (W3C trace context in the request headers, read by prop) with a server span
// per handled call (calls to unknown methods included), and sends the span's context back in the reply headers.
// Expected errors are span events carrying the exc_type; other errors set the
// span's status to Error.
func ServerTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) ServerInterceptor {
	tracer := tp.Tracer(instrumentation)
	return func(ctx context.Context, call *CallInfo, next ServerHandler) (any, error) {
		ctx = prop.Extract(ctx, transport.HeaderCarrier(call.Headers))
		ctx, span := tracer.Start(ctx, spanName(call), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(callAttributes(call)...))
		defer span.End()
		res, err := next(ctx)
		if err != nil {
			recordError(span, err, call.IsExpected(err))
		}
		if call.ReplyHeaders != nil {
			prop.Inject(ctx, transport.HeaderCarrier(call.ReplyHeaders))
		}
		return res, err
	}
}

// ClientTracing returns a client interceptor that starts a client span per
// call and sends its context in the request headers (written by prop).
// Failures the caller sees (ServiceNotFound, timeouts, remote errors other
// than a Hypha method's expected ones) set the span's status to Error.
func ClientTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) ClientInterceptor {
	tracer := tp.Tracer(instrumentation)
	return func(ctx context.Context, call *CallInfo, next ClientInvoker) (json.RawMessage, error) {
		ctx, span := tracer.Start(ctx, spanName(call), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(callAttributes(call)...))
		defer span.End()
		prop.Inject(ctx, transport.HeaderCarrier(call.Headers))
		res, err := next(ctx, call)
		if err != nil {
			recordError(span, err, call.ReplyIsExpectedError())
		}
		return res, err
	}
}

// spanName is "<service>/<method>", as the RPC conventions name spans.
func spanName(call *CallInfo) string { return call.Service + "/" + call.Method }

func callAttributes(call *CallInfo) []attribute.KeyValue {
	return []attribute.KeyValue{
		attrRPCSystem.String("nameko"),
		attrRPCService.String(call.Service),
		attrRPCMethod.String(call.Method),
		attrMsgSystem.String("rabbitmq"),
		attrMsgDestination.String(call.Exchange),
		attrMsgRoutingKey.String(call.RoutingKey),
		attrMsgConvID.String(call.CorrelationID),
		attrMsgBodySize.Int(call.BodySize),
	}
}

// recordError puts err on span: an event for an expected error, an exception
// event and status Error otherwise. Either event names the exc_type once;
// span.RecordError would add the Go type as a second exception.type.
func recordError(span trace.Span, err error, expected bool) {
	attrs := trace.WithAttributes(attrExcType.String(excTypeOf(err)), attrExcMessage.String(err.Error()))
	if expected {
		span.AddEvent("expected error", attrs)
		return
	}
	span.AddEvent("exception", attrs)
	span.SetStatus(codes.Error, err.Error())
}

// excTypeOf names an error as the wire would, or as the caller sees a local failure.
func excTypeOf(err error) string {
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
