package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/internal/label"
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
	attrRPCMethodOrig  = attribute.Key("rpc.method_original")
	attrMsgSystem      = attribute.Key("messaging.system")
	attrMsgDestination = attribute.Key("messaging.destination.name")
	attrMsgRoutingKey  = attribute.Key("messaging.rabbitmq.destination.routing_key")
	attrMsgConvID      = attribute.Key("messaging.message.conversation_id")
	attrMsgBodySize    = attribute.Key("messaging.message.body.size")
	attrExcType        = attribute.Key("exception.type")
	attrExcMessage     = attribute.Key("exception.message")
)

// ServerTracing returns a server interceptor that continues the caller's trace
// (W3C trace context in the request headers, read by prop, or forwarded by a
// nameko service in between: see transport.ReceivedTrace) with a server span
// per handled call (calls to unknown methods included), and sends the span's context back in the reply headers.
// A call to a method the service lacks is named "<service>/_OTHER", as the
// RPC conventions name it, its method in rpc.method_original: span names
// become metric labels in span-metrics pipelines, and the caller chose it.
// Expected errors are span events carrying the exc_type; other errors set the
// span's status to Error.
func ServerTracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) ServerInterceptor {
	tracer := tp.Tracer(instrumentation)
	return func(ctx context.Context, call *CallInfo, next ServerHandler) (any, error) {
		ctx = prop.Extract(ctx, transport.ReceivedTrace(call.Headers))
		name, attrs := spanName(call), callAttributes(call)
		if call.method == nil {
			name, attrs = unknownMethodSpan(call)
		}
		ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
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

// unknownMethodSpan is the name and attributes of the span of a call to a
// method the service lacks: the method as _OTHER, what the caller sent as
// valid UTF-8 (an exporter may refuse the batch over one invalid string).
func unknownMethodSpan(call *CallInfo) (string, []attribute.KeyValue) {
	attrs := callAttributes(call)
	for i, kv := range attrs {
		switch kv.Key {
		case attrRPCMethod:
			attrs[i] = attrRPCMethod.String(label.Other)
		case attrMsgRoutingKey:
			attrs[i] = attrMsgRoutingKey.String(strings.ToValidUTF8(call.RoutingKey, "\uFFFD"))
		}
	}
	attrs = append(attrs, attrRPCMethodOrig.String(strings.ToValidUTF8(call.Method, "\uFFFD")))
	return call.Service + "/" + label.Other, attrs
}

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
