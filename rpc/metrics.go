package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hypha-go/hypha/entrypoint"
)

// Call outcomes, the "outcome" attribute of the call metrics.
const (
	OutcomeOK            = "ok"
	OutcomeExpectedError = "expected_error"
	OutcomeError         = "error"
	// OutcomeRemoteError is a server's call that failed with an error a
	// downstream service sent, relayed by the handler and not declared with
	// Expected: the failure lies further down the call chain.
	OutcomeRemoteError     = "remote_error"
	OutcomeTimeout         = "timeout"
	OutcomeServiceNotFound = "service_not_found"
)

// unknownMethod is the method attribute of calls to a method the service
// lacks, as OpenTelemetry names values outside a known set.
const unknownMethod = "_OTHER"

// Metric attribute keys.
const (
	attrService = attribute.Key("service")
	attrTarget  = attribute.Key("target_service")
	attrMethod  = attribute.Key("method")
	attrOutcome = attribute.Key("outcome")
)

// ServerMetrics returns a server interceptor that counts the calls a service
// handles (hypha.rpc.server.calls) and records how long each took
// (hypha.rpc.server.duration, seconds, in entrypoint.DurationBuckets), by service, method and outcome.
// Calls to a method the service lacks count under method "_OTHER".
func ServerMetrics(mp metric.MeterProvider) (ServerInterceptor, error) {
	calls, duration, err := callInstruments(mp, "server", "handled")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, call *CallInfo, next ServerHandler) (any, error) {
		start := time.Now()
		res, err := next(ctx)
		outcome := OutcomeOK
		switch {
		case err != nil && call.IsExpected(err):
			outcome = OutcomeExpectedError
		case err != nil && cancelled(ctx, err):
			outcome = OutcomeTimeout
		case err != nil && isRelayed(ctx, err):
			outcome = OutcomeRemoteError
		case err != nil:
			outcome = OutcomeError
		}
		method := call.Method
		if call.method == nil {
			method = unknownMethod // any name a caller sends would be a new series
		}
		attrs := metric.WithAttributes(attrService.String(call.Service), attrMethod.String(method), attrOutcome.String(outcome))
		calls.Add(ctx, 1, attrs)
		duration.Record(ctx, time.Since(start).Seconds(), attrs)
		return res, err
	}, nil
}

// ClientMetrics returns a client interceptor that counts the calls the
// service named caller makes (hypha.rpc.client.calls) and records how long
// each took (hypha.rpc.client.duration, seconds, in entrypoint.DurationBuckets), by caller, called service,
// method and outcome.
func ClientMetrics(mp metric.MeterProvider, caller string) (ClientInterceptor, error) {
	calls, duration, err := callInstruments(mp, "client", "made")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, call *CallInfo, next ClientInvoker) (json.RawMessage, error) {
		start := time.Now()
		res, err := next(ctx, call)
		outcome := OutcomeOK
		switch {
		case err == nil:
		case errors.Is(err, ErrTimeout):
			outcome = OutcomeTimeout
		case errors.Is(err, ErrServiceNotFound):
			outcome = OutcomeServiceNotFound
		case call.ReplyIsExpectedError():
			outcome = OutcomeExpectedError
		default:
			outcome = OutcomeError
		}
		attrs := metric.WithAttributes(attrService.String(caller), attrTarget.String(call.Service),
			attrMethod.String(call.Method), attrOutcome.String(outcome))
		calls.Add(ctx, 1, attrs)
		duration.Record(ctx, time.Since(start).Seconds(), attrs)
		return res, err
	}, nil
}

func callInstruments(mp metric.MeterProvider, side, verb string) (metric.Int64Counter, metric.Float64Histogram, error) {
	meter := mp.Meter(instrumentation)
	calls, err := meter.Int64Counter("hypha.rpc."+side+".calls",
		metric.WithDescription("RPC calls "+verb+", by outcome."), metric.WithUnit("{call}"))
	if err != nil {
		return nil, nil, err
	}
	duration, err := meter.Float64Histogram("hypha.rpc."+side+".duration",
		metric.WithDescription("How long RPC calls "+verb+" took."), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(entrypoint.DurationBuckets()...))
	return calls, duration, err
}
