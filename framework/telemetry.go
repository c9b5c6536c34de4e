package framework

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/fx"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
	hyphatelemetry "github.com/hypha-go/hypha/telemetry"
)

// defaultGRPCEndpoint is OTLP/gRPC's default, used when TRACING.ENDPOINT is
// left at the (HTTP) default.
const defaultGRPCEndpoint = "http://localhost:4317"

// telemetry is the app's OpenTelemetry set-up, built from TRACING and
// METRICS: a tracer provider per service (each with its own service.name) and
// one meter provider, exported on one Prometheus registry (with the Go
// runtime's and the process's collectors), for the process. With both off it
// adds nothing to a call.
type telemetry struct {
	tracing config.TracingSettings
	prop    propagation.TextMapPropagator
	tracers []*sdktrace.TracerProvider

	meters    *sdkmetric.MeterProvider // nil when METRICS.ADDRESS is empty
	registry  *prometheus.Registry
	address   string
	endpoints *endpoints
	// httpAddress is HTTP.ADDRESS, which names the server in the HTTP
	// metrics: otelhttp would take the Host header, any client's choice.
	httpAddress string
	restores    metric.Int64Counter
	expired     metric.Int64Counter
	dupes       metric.Int64Counter
	dead        metric.Int64Counter
	noReplyTo   metric.Int64Counter
}

func newTelemetry(lc fx.Lifecycle, cfg Config, e *endpoints) (*telemetry, error) {
	t := &telemetry{
		tracing:     cfg.Tracing,
		prop:        propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		address:     cfg.Metrics.Address,
		endpoints:   e,
		httpAddress: cfg.HTTP.Address,
	}
	if t.address != "" {
		if err := t.startMetrics(); err != nil {
			return nil, err
		}
		e.handle("METRICS.ADDRESS", t.address, "/metrics", promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{}))
	}
	lc.Append(fx.Hook{OnStop: t.shutdown})
	return t, nil
}

func (t *telemetry) startMetrics() error {
	t.registry = prometheus.NewRegistry()
	if err := errors.Join(t.registry.Register(collectors.NewGoCollector()),
		t.registry.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))); err != nil {
		return fmt.Errorf("hypha: metrics collectors: %w", err)
	}
	// Every series would otherwise carry otel_scope_* labels naming the
	// package that recorded it: noise to Prometheus users.
	exporter, err := otelprom.New(otelprom.WithRegisterer(t.registry), otelprom.WithoutScopeInfo())
	if err != nil {
		return fmt.Errorf("hypha: metrics exporter: %w", err)
	}
	t.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	t.restores, err = t.meter().Int64Counter("hypha.broker.reconnects",
		metric.WithDescription("Broker connections restored after a loss."), metric.WithUnit("{reconnect}"))
	if err != nil {
		return err
	}
	t.restores.Add(context.Background(), 0) // exported from the start, so rate() sees the first one
	t.expired, err = t.meter().Int64Counter("hypha.rpc.server.expired",
		metric.WithDescription("Calls dropped unstarted because their caller's deadline had passed."), metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	t.dupes, err = t.meter().Int64Counter("hypha.rpc.server.duplicates",
		metric.WithDescription("Copies of requests this instance had already answered, dropped unrun."), metric.WithUnit("{call}"))
	if err != nil {
		return err
	}
	t.dead, err = t.meter().Int64Counter("hypha.events.dead_lettered",
		metric.WithDescription("Events sent to their dead-letter queue, by how."), metric.WithUnit("{event}"))
	if err != nil {
		return err
	}
	t.noReplyTo, err = t.meter().Int64Counter("hypha.rpc.server.no_reply_to",
		metric.WithDescription("Requests that came without a reply_to: run, their outcome sent nowhere."), metric.WithUnit("{call}"))
	return err
}

func (t *telemetry) meter() metric.Meter {
	return t.meters.Meter("github.com/hypha-go/hypha/framework")
}

// metricsAddress is where /metrics is served, once started; "" when off.
func (t *telemetry) metricsAddress() string {
	if t.meters == nil {
		return ""
	}
	return t.endpoints.address(t.address)
}

// shutdown flushes every service's spans and stops the meters.
func (t *telemetry) shutdown(ctx context.Context) error {
	var errs []error
	for _, tp := range t.tracers {
		errs = append(errs, tp.Shutdown(ctx))
	}
	if t.meters != nil {
		errs = append(errs, t.meters.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// interceptors builds a service's tracing and metrics interceptors, given
// the services it declared proxies to, and the wrapper of its HTTP routes;
// none when telemetry is off.
func (t *telemetry) interceptors(service string, calls []string) ([]entrypoint.Interceptor,
	func(pattern string, h http.Handler) http.Handler, error) {
	var ics []entrypoint.Interceptor
	var httpOpts []otelhttp.Option
	if t.tracing.Exporter != "none" {
		tp, err := t.tracerProvider(service)
		if err != nil {
			return nil, nil, err
		}
		httpOpts = append(httpOpts, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(t.prop))
		ics = append(ics, hyphatelemetry.Tracing(tp, t.prop))
	}
	if t.meters != nil {
		m, err := hyphatelemetry.Metrics(t.meters, calls...)
		if err != nil {
			return nil, nil, err
		}
		ics = append(ics, m)
		httpOpts = append(httpOpts, otelhttp.WithMeterProvider(t.meters))
	}
	if len(httpOpts) == 0 {
		return ics, nil, nil
	}
	// The server's name and port are HTTP.ADDRESS's (with port 0 no port),
	// never the request's Host header: each Host a client sent would be new
	// series.
	httpOpts = append(httpOpts, otelhttp.WithServerName(t.httpAddress))
	return ics, httpInstrument(httpOpts), nil
}

// httpInstrument wraps a route's handler in otelhttp: a server span named
// after the route's pattern ("GET /users/{id}") that continues the client's
// trace, and HTTP server metrics. What telemetry leaves off (traces or
// metrics) is a no-op, never the global provider.
func httpInstrument(opts []otelhttp.Option) func(pattern string, h http.Handler) http.Handler {
	opts = append([]otelhttp.Option{
		otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
	}, opts...)
	return func(pattern string, h http.Handler) http.Handler {
		return otelhttp.NewHandler(h, pattern, opts...)
	}
}

// tracerProvider builds a service's tracer provider: its own resource
// (service.name, plus OTEL_RESOURCE_ATTRIBUTES) and exporter.
func (t *telemetry) tracerProvider(service string) (*sdktrace.TracerProvider, error) {
	ctx := context.Background()
	res, err := resource.New(ctx, resource.WithFromEnv(), resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", service)))
	if err != nil {
		return nil, fmt.Errorf("hypha: tracing resource: %w", err)
	}
	exporter, err := t.exporter(ctx)
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.tracing.SamplerRatio))),
	)
	t.tracers = append(t.tracers, tp)
	return tp, nil
}

func (t *telemetry) exporter(ctx context.Context) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch {
	case t.tracing.Exporter == "console":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	case t.tracing.Protocol == "grpc":
		endpoint := t.tracing.Endpoint
		if endpoint == config.DefaultSettings().Tracing.Endpoint {
			endpoint = defaultGRPCEndpoint // OTLP's default port differs by protocol
		}
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	default:
		// ENDPOINT is the OTLP base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is:
		// the signal's path goes after it.
		url := strings.TrimSuffix(t.tracing.Endpoint, "/")
		if !strings.HasSuffix(url, "/v1/traces") {
			url += "/v1/traces"
		}
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
	}
	if err != nil {
		return nil, fmt.Errorf("hypha: config TRACING (%s %s): %w", t.tracing.Exporter, t.tracing.Endpoint, err)
	}
	return exp, nil
}

// workersGauge reports a service's busy workers as hypha.workers.busy.
func (t *telemetry) workersGauge(service string, busy func() int) error {
	return t.serviceGauge("hypha.workers.busy", "Workers running a call or event now, per service.", "{worker}", service, busy)
}

// inFlightGauge reports the calls a service is waiting on as hypha.rpc.client.in_flight.
func (t *telemetry) inFlightGauge(service string, inFlight func() int) error {
	return t.serviceGauge("hypha.rpc.client.in_flight", "RPC calls waiting for their reply now, per calling service.",
		"{call}", service, inFlight)
}

func (t *telemetry) serviceGauge(name, description, unit, service string, value func() int) error {
	if t.meters == nil {
		return nil
	}
	_, err := t.meter().Int64ObservableGauge(name, metric.WithDescription(description), metric.WithUnit(unit),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(value()), metric.WithAttributes(attribute.String("service", label.Own(service))))
			return nil
		}))
	return err
}

// connectedGauge reports the broker connection as hypha.broker.connected: 1
// while up, 0 while down.
func (t *telemetry) connectedGauge(connected func() bool) error {
	if t.meters == nil {
		return nil
	}
	_, err := t.meter().Int64ObservableGauge("hypha.broker.connected",
		metric.WithDescription("1 while the broker connection is up, 0 while it is down."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			v := int64(0)
			if connected() {
				v = 1
			}
			o.Observe(v)
			return nil
		}))
	return err
}

// expiredCalls counts the calls a service dropped because their caller had
// given up (hypha.rpc.server.expired), by service and method: one of
// methods, the service's, or "_OTHER", since the name came from the wire.
func (t *telemetry) expiredCalls(service string, methods *label.Set) func(method string) {
	return func(method string) {
		if t.expired != nil {
			t.expired.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", label.Own(service)),
				attribute.String("method", methods.Of(method))))
		}
	}
}

// duplicateCalls counts the copies of requests a service instance had
// already answered (hypha.rpc.server.duplicates), by service and method (one
// of methods, else "_OTHER").
func (t *telemetry) duplicateCalls(service string, methods *label.Set) func(method string) {
	return func(method string) {
		if t.dupes != nil {
			t.dupes.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", label.Own(service)),
				attribute.String("method", methods.Of(method))))
		}
	}
}

// deadLetters counts the events a service's handlers dead-lettered
// (hypha.events.dead_lettered), by service, handler, event and how.
func (t *telemetry) deadLetters(service string) func(handler, event, how string) {
	return func(handler, event, how string) {
		if t.dead != nil {
			t.dead.Add(context.Background(), 1, metric.WithAttributes(attribute.String("service", service),
				attribute.String("handler", handler), attribute.String("event", event), attribute.String("how", how)))
		}
	}
}

// noReplyToCalls counts the requests a service ran without a reply_to
// (hypha.rpc.server.no_reply_to), by service and method.
func (t *telemetry) noReplyToCalls(service string) func(method string) {
	return func(method string) {
		if t.noReplyTo != nil {
			t.noReplyTo.Add(context.Background(), 1,
				metric.WithAttributes(attribute.String("service", service), attribute.String("method", method)))
		}
	}
}

// restored counts a restored broker connection.
func (t *telemetry) restored() {
	if t.restores != nil {
		t.restores.Add(context.Background(), 1)
	}
}
