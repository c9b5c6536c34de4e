package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
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

// Bounds of the client metrics' labels: a caller chooses the target and the
// method of each call, so only these many of each, learned from the replies,
// become labels; the rest count under "_OTHER".
const (
	// MaxMetricTargets is how many services other than the declared ones
	// (ClientMetrics' targets) become target_service labels, the first that
	// answer a call.
	MaxMetricTargets = 32
	// MaxMetricMethods is how many methods of one target become method
	// labels: the first the target answers other than with MethodNotFound.
	MaxMetricMethods = 128
)

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
// Calls to a method the service lacks count under method "_OTHER", whatever
// name the caller sent.
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
		method := label.Other // any name a caller sends would be a new series
		if call.method != nil {
			method = label.Own(call.Method)
		}
		attrs := metric.WithAttributes(attrService.String(label.Own(call.Service)), attrMethod.String(method),
			attrOutcome.String(outcome))
		calls.Add(ctx, 1, attrs)
		duration.Record(ctx, time.Since(start).Seconds(), attrs)
		return res, err
	}, nil
}

// ClientMetrics returns a client interceptor that counts the calls the
// service named caller makes (hypha.rpc.client.calls) and records how long
// each took (hypha.rpc.client.duration, seconds, in entrypoint.DurationBuckets), by caller, called service,
// method and outcome.
//
// The labels are bounded whatever the calls: target_service is one of
// targets (the services the caller declared) or of the first
// MaxMetricTargets others that answered a call; method is one of the first
// MaxMetricMethods methods its target answered other than with
// MethodNotFound. Anything else counts under "_OTHER".
func ClientMetrics(mp metric.MeterProvider, caller string, targets ...string) (ClientInterceptor, error) {
	calls, duration, err := callInstruments(mp, "client", "made")
	if err != nil {
		return nil, err
	}
	labels := &clientLabels{targets: label.NewSet(MaxMetricTargets, targets...)}
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
		target, method := labels.of(call, err)
		attrs := metric.WithAttributes(attrService.String(label.Own(caller)), attrTarget.String(target),
			attrMethod.String(method), attrOutcome.String(outcome))
		calls.Add(ctx, 1, attrs)
		duration.Record(ctx, time.Since(start).Seconds(), attrs)
		return res, err
	}, nil
}

// clientLabels are the target and method labels a client has admitted.
type clientLabels struct {
	targets *label.Set
	methods sync.Map // target label → *label.Set of its methods
}

// of is the call's target and method labels. A reply from the target
// (a result or a RemoteError) shows that the target exists, and, unless it
// is MethodNotFound, that the method does: only those are learned.
func (l *clientLabels) of(call *CallInfo, err error) (target, method string) {
	_, remote := errors.AsType[*RemoteError](err)
	answered := err == nil || remote && !errors.Is(err, ErrServiceNotFound)
	if answered {
		target = l.targets.Learn(call.Service)
	} else {
		target = l.targets.Of(call.Service)
	}
	if target == label.Other {
		return target, label.Other
	}
	set, ok := l.methods.Load(target)
	if !ok {
		set, _ = l.methods.LoadOrStore(target, label.NewSet(MaxMetricMethods))
	}
	methods := set.(*label.Set)
	if answered && !errors.Is(err, ErrMethodNotFound) {
		return target, methods.Learn(call.Method)
	}
	return target, methods.Of(call.Method)
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
