package telemetry

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
	"github.com/hypha-go/hypha/rpc"
)

// RPC call outcomes, the "outcome" attribute of the RPC call metrics. Event
// handler runs are "ok", "timeout" or "error", timer ticks "ok" or "error".
const (
	outcomeOK            = "ok"
	outcomeExpectedError = "expected_error"
	outcomeError         = "error"
	// outcomeRemoteError is a server's call that failed with an error a
	// downstream service sent, relayed by the handler and not declared with
	// Expected: the failure lies further down the call chain.
	outcomeRemoteError     = "remote_error"
	outcomeTimeout         = "timeout"
	outcomeServiceNotFound = "service_not_found"
)

// Bounds of the client metrics' labels: a caller chooses the target and the
// method of each call, so only these many of each, learned from the replies,
// become labels; the rest count under "_OTHER".
const (
	// maxMetricTargets is how many services other than the declared ones
	// (Metrics' targets) become target_service labels, the first that
	// answer a call.
	maxMetricTargets = 32
	// maxMetricMethods is how many methods of one target become method
	// labels: the first the target answers other than with MethodNotFound.
	maxMetricMethods = 128
)

// Metric attribute keys.
const (
	attrService = attribute.Key("service")
	attrTarget  = attribute.Key("target_service")
	attrMethod  = attribute.Key("method")
	attrOutcome = attribute.Key("outcome")
)

// instruments are a counter and a duration histogram.
type instruments struct {
	count    metric.Int64Counter
	duration metric.Float64Histogram
}

func (in instruments) record(ctx context.Context, start time.Time, attrs metric.MeasurementOption) {
	in.count.Add(ctx, 1, attrs)
	in.duration.Record(ctx, time.Since(start).Seconds(), attrs)
}

// Metrics returns an interceptor that counts runs and calls and records how
// long each took (seconds, in durationBuckets):
//
//   - the RPC calls a service handles: hypha.rpc.server.calls and
//     hypha.rpc.server.duration, by service, method and outcome. Calls to a
//     method the service lacks count under method "_OTHER", whatever name
//     the caller sent;
//   - the RPC calls a client makes: hypha.rpc.client.calls and
//     hypha.rpc.client.duration, by calling service (rpc.CallInfo.Caller),
//     target_service, method and outcome;
//   - event handler runs: hypha.events.handled and hypha.events.duration,
//     by service, handler, event and outcome ("ok", "timeout" or "error");
//   - timer ticks: hypha.timer.ticks and hypha.timer.duration, by service,
//     timer and outcome ("ok" or "error").
//
// The client labels are bounded whatever the calls: target_service is one of
// targets (the services the caller declared) or of the first
// maxMetricTargets others that answered a call; method is one of the first
// maxMetricMethods methods its target answered other than with
// MethodNotFound. Anything else counts under "_OTHER". Dispatches and HTTP
// routes are not counted here (otelhttp measures the routes).
func Metrics(mp metric.MeterProvider, targets ...string) (entrypoint.Interceptor, error) {
	server, err := newInstruments(mp, entrypoint.KindRPC, "hypha.rpc.server.calls", "RPC calls handled, by outcome.",
		"{call}", "hypha.rpc.server.duration", "How long RPC calls handled took.")
	if err != nil {
		return nil, err
	}
	client, err := newInstruments(mp, entrypoint.KindRPC, "hypha.rpc.client.calls", "RPC calls made, by outcome.",
		"{call}", "hypha.rpc.client.duration", "How long RPC calls made took.")
	if err != nil {
		return nil, err
	}
	handled, err := newInstruments(mp, entrypoint.KindEvent, "hypha.events.handled", "Event handler runs, by outcome.",
		"{event}", "hypha.events.duration", "How long event handler runs took.")
	if err != nil {
		return nil, err
	}
	ticks, err := newInstruments(mp, entrypoint.KindTimer, "hypha.timer.ticks", "Timer ticks run, by outcome.",
		"{tick}", "hypha.timer.duration", "How long timer ticks took.")
	if err != nil {
		return nil, err
	}
	others, err := newInstruments(mp, "", "hypha.entrypoint.runs",
		"Runs of the entrypoints of kinds that plug-ins add, by kind and outcome.", "{run}",
		"hypha.entrypoint.duration", "How long runs of the entrypoints of kinds that plug-ins add took.")
	if err != nil {
		return nil, err
	}
	labels := &clientLabels{targets: label.NewSet(maxMetricTargets, targets...)}
	return func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
		rc, ev, tick := specs(call)
		if builtIn(call.Kind) && rc == nil && (ev == nil || call.Client) && !tick {
			return next(ctx)
		}
		if !builtIn(call.Kind) {
			start := time.Now()
			err := next(ctx)
			outcome := outcomeOK
			switch {
			case err != nil && call.IsExpected(err):
				outcome = outcomeExpectedError
			case err != nil:
				outcome = outcomeError
			}
			// A plug-in's kind and names are its registrations', bounded
			// as every other label is.
			others.record(ctx, start, metric.WithAttributes(attribute.String("kind", label.Own(string(call.Kind))),
				attrService.String(label.Own(call.Service)), attribute.String("entrypoint", label.Own(call.Name)),
				attribute.Bool("client", call.Client), attrOutcome.String(outcome)))
			return err
		}
		start := time.Now()
		err := next(ctx)
		switch {
		case rc != nil && call.Client:
			target, method := labels.of(rc, err)
			client.record(ctx, start, metric.WithAttributes(attrService.String(label.Own(rc.Caller)),
				attrTarget.String(target), attrMethod.String(method), attrOutcome.String(clientOutcome(call, err))))
		case rc != nil:
			method := label.Other // any name a caller sends would be a new series
			if !rc.Unknown {
				method = label.Own(rc.Method)
			}
			server.record(ctx, start, metric.WithAttributes(attrService.String(label.Own(rc.Service)),
				attrMethod.String(method), attrOutcome.String(serverOutcome(ctx, call, rc, err))))
		case ev != nil:
			outcome := outcomeOK
			switch {
			case err != nil && cancelled(ctx, err):
				outcome = outcomeTimeout
			case err != nil:
				outcome = outcomeError
			}
			// Every label is the handler's registration, never the message's:
			// the source and event type are those it subscribed to.
			handled.record(ctx, start, metric.WithAttributes(attribute.String("service", label.Own(ev.Service)),
				attribute.String("handler", label.Own(ev.Handler)),
				attribute.String("event", label.Own(ev.Source+"."+ev.EventType)), attribute.String("outcome", outcome)))
		default:
			outcome := outcomeOK
			if err != nil {
				outcome = outcomeError
			}
			ticks.record(ctx, start, metric.WithAttributes(attribute.String("service", label.Own(call.Service)),
				attribute.String("timer", label.Own(call.Name)), attribute.String("outcome", outcome)))
		}
		return err
	}, nil
}

func serverOutcome(ctx context.Context, call *entrypoint.Call, rc *rpc.CallInfo, err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case call.IsExpected(err):
		return outcomeExpectedError
	case cancelled(ctx, err):
		return outcomeTimeout
	case rc.Relayed(ctx, err):
		return outcomeRemoteError
	}
	return outcomeError
}

func clientOutcome(call *entrypoint.Call, err error) string {
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, rpc.ErrTimeout):
		return outcomeTimeout
	case errors.Is(err, rpc.ErrServiceNotFound):
		return outcomeServiceNotFound
	case call.IsExpected(err):
		return outcomeExpectedError
	}
	return outcomeError
}

// cancelled reports whether a run's err is its context ending: the caller's
// deadline, the handler's timeout, the stop's grace period, or a lost
// connection.
func cancelled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

func newInstruments(mp metric.MeterProvider, kind entrypoint.Kind, count, countDesc, unit, duration, durationDesc string) (instruments, error) {
	meter := mp.Meter(scope(kind))
	var in instruments
	var err error
	in.count, err = meter.Int64Counter(count, metric.WithDescription(countDesc), metric.WithUnit(unit))
	if err != nil {
		return in, err
	}
	in.duration, err = meter.Float64Histogram(duration, metric.WithDescription(durationDesc), metric.WithUnit("s"),
		metric.WithExplicitBucketBoundaries(durationBuckets()...))
	return in, err
}

// clientLabels are the target and method labels a client has admitted.
type clientLabels struct {
	targets *label.Set
	methods sync.Map // target label → *label.Set of its methods
}

// of is the call's target and method labels. A reply from the target
// (a result or a RemoteError) shows that the target exists, and, unless it
// is MethodNotFound, that the method does: only those are learned.
func (l *clientLabels) of(call *rpc.CallInfo, err error) (target, method string) {
	_, remote := errors.AsType[*rpc.RemoteError](err)
	answered := err == nil || remote && !errors.Is(err, rpc.ErrServiceNotFound)
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
		set, _ = l.methods.LoadOrStore(target, label.NewSet(maxMetricMethods))
	}
	methods := set.(*label.Set)
	if answered && !errors.Is(err, rpc.ErrMethodNotFound) {
		return target, methods.Learn(call.Method)
	}
	return target, methods.Of(call.Method)
}

// builtIn reports whether kind is one of Hypha's own, which have metrics of
// their own (HTTP's are otelhttp's).
func builtIn(kind entrypoint.Kind) bool {
	switch kind {
	case entrypoint.KindRPC, entrypoint.KindEvent, entrypoint.KindTimer, entrypoint.KindHTTP:
		return true
	}
	return false
}
