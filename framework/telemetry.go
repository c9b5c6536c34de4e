package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
	"go.uber.org/fx"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
)

// defaultGRPCEndpoint is OTLP/gRPC's default, used when TRACING.ENDPOINT is
// left at the (HTTP) default.
const defaultGRPCEndpoint = "http://localhost:4317"

// telemetry is the app's OpenTelemetry set-up, built from TRACING and
// METRICS: a tracer provider per service (each with its own service.name) and
// one meter provider, exported on one Prometheus registry, for the process.
// With both off it adds nothing to a call.
type telemetry struct {
	tracing TracingSettings
	prop    propagation.TextMapPropagator
	tracers []*sdktrace.TracerProvider

	meters   *sdkmetric.MeterProvider // nil when METRICS.ADDRESS is empty
	registry *prometheus.Registry
	address  string
	server   *http.Server
	listener net.Listener
	restores metric.Int64Counter
}

func newTelemetry(lc fx.Lifecycle, cfg Config, log *slog.Logger) (*telemetry, error) {
	t := &telemetry{
		tracing: cfg.Tracing,
		prop:    propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		address: cfg.Metrics.Address,
	}
	if t.address != "" {
		if err := t.startMetrics(); err != nil {
			return nil, err
		}
	}
	lc.Append(fx.Hook{OnStart: t.serve(log), OnStop: t.shutdown})
	return t, nil
}

func (t *telemetry) startMetrics() error {
	t.registry = prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(t.registry))
	if err != nil {
		return fmt.Errorf("hypha: metrics exporter: %w", err)
	}
	t.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	t.restores, err = t.meters.Meter("github.com/hypha-go/hypha/framework").Int64Counter("hypha.broker.reconnects",
		metric.WithDescription("Broker connections restored after a loss."), metric.WithUnit("{reconnect}"))
	return err
}

// serve opens the /metrics endpoint on start, so a taken address stops the start.
func (t *telemetry) serve(log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		if t.meters == nil {
			return nil
		}
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", t.address)
		if err != nil {
			return fmt.Errorf("hypha: config METRICS.ADDRESS %s: %w", t.address, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{}))
		t.listener = ln
		t.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := t.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("hypha: metrics endpoint stopped", "error", err)
			}
		}()
		log.Info("hypha: metrics at http://" + ln.Addr().String() + "/metrics")
		return nil
	}
}

// metricsAddress is where /metrics is served, once started; "" when off.
func (t *telemetry) metricsAddress() string {
	if t.listener == nil {
		return ""
	}
	return t.listener.Addr().String()
}

// shutdown flushes every service's spans and closes the metrics endpoint.
func (t *telemetry) shutdown(ctx context.Context) error {
	var errs []error
	for _, tp := range t.tracers {
		errs = append(errs, tp.Shutdown(ctx))
	}
	if t.server != nil {
		errs = append(errs, t.server.Shutdown(ctx))
	}
	if t.meters != nil {
		errs = append(errs, t.meters.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// serviceInterceptors are the tracing and metrics interceptors of one service.
type serviceInterceptors struct {
	rpcServer []rpc.ServerInterceptor
	rpcClient []rpc.ClientInterceptor
	handlers  []events.HandlerInterceptor
	dispatch  []events.DispatchInterceptor
}

// interceptors builds a service's interceptors; none when telemetry is off.
func (t *telemetry) interceptors(service string) (serviceInterceptors, error) {
	var ics serviceInterceptors
	if t.tracing.Exporter != "none" {
		tp, err := t.tracerProvider(service)
		if err != nil {
			return ics, err
		}
		ics.rpcServer = append(ics.rpcServer, rpc.ServerTracing(tp, t.prop))
		ics.rpcClient = append(ics.rpcClient, rpc.ClientTracing(tp, t.prop))
		ics.handlers = append(ics.handlers, events.HandlerTracing(tp, t.prop))
		ics.dispatch = append(ics.dispatch, events.DispatchTracing(tp, t.prop))
	}
	if t.meters != nil {
		sm, err := rpc.ServerMetrics(t.meters)
		if err != nil {
			return ics, err
		}
		cm, err := rpc.ClientMetrics(t.meters, service)
		if err != nil {
			return ics, err
		}
		hm, err := events.HandlerMetrics(t.meters)
		if err != nil {
			return ics, err
		}
		ics.rpcServer = append(ics.rpcServer, sm)
		ics.rpcClient = append(ics.rpcClient, cm)
		ics.handlers = append(ics.handlers, hm)
	}
	return ics, nil
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
		if endpoint == DefaultTracingEndpoint {
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
	if t.meters == nil {
		return nil
	}
	_, err := t.meters.Meter("github.com/hypha-go/hypha/framework").Int64ObservableGauge("hypha.workers.busy",
		metric.WithDescription("Workers running a call or event now, per service."), metric.WithUnit("{worker}"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(busy()), metric.WithAttributes(attribute.String("service", service)))
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
