package telemetry

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/label"
	"github.com/hypha-go/hypha/internal/tracehdr"
	"github.com/hypha-go/hypha/rpc"
)

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

// Tracing returns an interceptor that records a span per run or call, with
// OpenTelemetry's RPC and messaging conventions, and carries the trace
// context in the messages' headers (read and written by prop):
//
//   - an RPC server call continues the caller's trace (W3C trace context in
//     the request headers, or, when they have none, the copies a nameko
//     service in between forwarded as "nameko.traceparent" and the like)
//     with a server span "<service>/<method>", and
//     sends the span's context back in the reply headers. A call to a method
//     the service lacks is named "<service>/_OTHER", as the RPC conventions
//     name it, its method in rpc.method_original: span names become metric
//     labels in span-metrics pipelines, and the caller chose it;
//   - an RPC client call is a client span "<service>/<method>" whose context
//     goes in the request headers;
//   - a dispatch is a producer span "publish <source>.<event_type>" whose
//     context goes in the event's headers;
//   - a handler run continues the dispatcher's trace with a consumer span
//     "process <source>.<event_type>";
//   - a timer tick is a span "tick <service>.<timer>", the root of the trace
//     of the calls the tick makes.
//
// An RPC error the method declared with Expected (on either side) is a span
// event carrying the exc_type; any other error, of any kind, sets the span's
// status to Error. HTTP routes are left to otelhttp.
func Tracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) entrypoint.Interceptor {
	rpcTracer := tp.Tracer(scope(entrypoint.KindRPC))
	eventTracer := tp.Tracer(scope(entrypoint.KindEvent))
	timerTracer := tp.Tracer(scope(entrypoint.KindTimer))
	otherTracer := tp.Tracer("github.com/hypha-go/hypha/telemetry")
	return func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		rc, ev, tick := specs(call)
		switch {
		case rc != nil && call.Client:
			return traceRPCClient(ctx, rpcTracer, prop, call, rc, next)
		case rc != nil:
			return traceRPCServer(ctx, rpcTracer, prop, call, rc, next)
		case ev != nil && call.Client:
			ctx, span := eventTracer.Start(ctx, "publish "+ev.Source+"."+ev.EventType, trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(append(eventAttributes(ev), attribute.String("messaging.operation.type", "publish"))...))
			defer span.End()
			prop.Inject(ctx, tracehdr.HeaderCarrier(ev.Headers))
			return failed(span, next(ctx))
		case ev != nil:
			ctx = prop.Extract(ctx, tracehdr.ReceivedTrace(ev.Headers))
			attrs := append(eventAttributes(ev),
				attribute.String("messaging.operation.type", "process"),
				attribute.String("messaging.consumer.group.name", ev.Queue),
				attribute.Int("hypha.event.attempt", ev.Attempt))
			ctx, span := eventTracer.Start(ctx, "process "+ev.Source+"."+ev.EventType, trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(attrs...))
			defer span.End()
			return failed(span, next(ctx))
		case tick:
			ctx, span := timerTracer.Start(ctx, "tick "+call.Service+"."+call.Name, trace.WithNewRoot(),
				trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attribute.String("hypha.timer", call.Name)))
			defer span.End()
			return failed(span, next(ctx))
		case call.Kind == entrypoint.KindHTTP, call.Kind == entrypoint.KindRPC, call.Kind == entrypoint.KindEvent,
			call.Kind == entrypoint.KindTimer:
			return next(ctx) // HTTP is otelhttp's
		}
		return traceOther(ctx, otherTracer, prop, call, next)
	}
}

// traceOther traces a run of a kind that a plug-in adds: a span "<kind>
// <service>.<name>", continuing the trace its message's headers carry (or
// sending the span's context in them, on the client side), with an expected
// error as an event and any other as the span's status.
func traceOther(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, call *entrypoint.Call,
	next entrypoint.Next) error {
	kind := trace.SpanKindInternal
	switch {
	case call.Client:
		kind = trace.SpanKindClient
	case call.Headers != nil:
		kind = trace.SpanKindServer
		ctx = prop.Extract(ctx, tracehdr.ReceivedTrace(call.Headers))
	}
	ctx, span := tracer.Start(ctx, string(call.Kind)+" "+call.Service+"."+call.Name, trace.WithSpanKind(kind),
		trace.WithAttributes(attribute.String("hypha.entrypoint.kind", string(call.Kind)),
			attribute.String("hypha.entrypoint.name", call.Name)))
	defer span.End()
	if call.Client && call.Headers != nil {
		prop.Inject(ctx, tracehdr.HeaderCarrier(call.Headers))
	}
	err := next(ctx)
	if err != nil && call.IsExpected(err) {
		span.AddEvent("expected error", trace.WithAttributes(attribute.String("exception.message", err.Error())))
		return err
	}
	return failed(span, err)
}

func traceRPCServer(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, call *entrypoint.Call,
	rc *rpc.CallInfo, next entrypoint.Next) error {
	ctx = prop.Extract(ctx, tracehdr.ReceivedTrace(rc.Headers))
	name, attrs := spanName(rc), callAttributes(rc)
	if rc.Unknown {
		name, attrs = unknownMethodSpan(rc)
	}
	ctx, span := tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	defer span.End()
	err := next(ctx)
	if err != nil {
		recordError(span, err, call.IsExpected(err))
	}
	if rc.ReplyHeaders != nil {
		prop.Inject(ctx, tracehdr.HeaderCarrier(rc.ReplyHeaders))
	}
	return err
}

func traceRPCClient(ctx context.Context, tracer trace.Tracer, prop propagation.TextMapPropagator, call *entrypoint.Call,
	rc *rpc.CallInfo, next entrypoint.Next) error {
	ctx, span := tracer.Start(ctx, spanName(rc), trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(callAttributes(rc)...))
	defer span.End()
	prop.Inject(ctx, tracehdr.HeaderCarrier(rc.Headers))
	err := next(ctx)
	if err != nil {
		recordError(span, err, call.IsExpected(err))
	}
	return err
}

// failed sets a span's status to Error when err is not nil, and returns err.
func failed(span trace.Span, err error) error {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	return err
}

// spanName is "<service>/<method>", as the RPC conventions name spans.
func spanName(call *rpc.CallInfo) string { return call.Service + "/" + call.Method }

// unknownMethodSpan is the name and attributes of the span of a call to a
// method the service lacks: the method as _OTHER, what the caller sent as
// valid UTF-8 (an exporter may refuse the batch over one invalid string).
func unknownMethodSpan(call *rpc.CallInfo) (string, []attribute.KeyValue) {
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

func callAttributes(call *rpc.CallInfo) []attribute.KeyValue {
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
	attrs := trace.WithAttributes(attrExcType.String(rpc.ExcType(err)), attrExcMessage.String(err.Error()))
	if expected {
		span.AddEvent("expected error", attrs)
		return
	}
	span.AddEvent("exception", attrs)
	span.SetStatus(codes.Error, err.Error())
}

func eventAttributes(ev *events.EventInfo) []attribute.KeyValue {
	return []attribute.KeyValue{
		attribute.String("messaging.system", "rabbitmq"),
		attribute.String("messaging.destination.name", ev.Exchange),
		attribute.String("messaging.rabbitmq.destination.routing_key", ev.RoutingKey),
		attribute.String("messaging.message.id", ev.MessageID),
		attribute.Int("messaging.message.body.size", ev.BodySize),
	}
}
