package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
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
	restores  metric.Int64Counter
}

func newTelemetry(lc fx.Lifecycle, cfg Config, e *endpoints) (*telemetry, error) {
	t := &telemetry{
		tracing:   cfg.Tracing,
		prop:      propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		address:   cfg.Metrics.Address,
		endpoints: e,
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
	return nil
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

// serviceTelemetry is one service's telemetry: its tracer provider, the
// propagator and the meter provider, nil for what is off, which its
// entrypoint kinds use for what is their own (see entrypoint.Service); and
// its tracing and metrics interceptors, which wrap every run of its
// entrypoints, every call it makes and every event it dispatches.
type serviceTelemetry struct {
	tracer       trace.TracerProvider
	prop         propagation.TextMapPropagator
	meters       metric.MeterProvider
	interceptors []entrypoint.Interceptor
}

// forService builds a service's telemetry, given the services it declared
// proxies to (which bound the client metrics' labels); no interceptors when
// telemetry is off.
func (t *telemetry) forService(service string, calls []string) (serviceTelemetry, error) {
	var st serviceTelemetry
	if t.tracing.Exporter != "none" {
		tp, err := t.tracerProvider(service)
		if err != nil {
			return st, err
		}
		st.tracer, st.prop = tp, t.prop
		st.interceptors = append(st.interceptors, hyphatelemetry.Tracing(tp, t.prop))
	}
	if t.meters != nil {
		st.meters = t.meters
		m, err := hyphatelemetry.Metrics(t.meters, calls...)
		if err != nil {
			return st, err
		}
		st.interceptors = append(st.interceptors, m)
	}
	return st, nil
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

// restored counts a restored broker connection.
func (t *telemetry) restored() {
	if t.restores != nil {
		t.restores.Add(context.Background(), 1)
	}
}
