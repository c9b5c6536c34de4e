package httpentry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/hypha-go/hypha/entrypoint"
)

// Plugin serves services' HTTP routes, the framework's built-in kind
// entrypoint.KindHTTP, and returns the handler that routes the process's
// requests to them (which the framework serves on HTTP.ADDRESS): 404 for a
// path no route has, 405 for one whose routes take other methods. A
// service's routes are added to it when the service is served, so that a
// pattern taken by another service stops the app from being built; they
// answer 503 until the service starts. Starting a service with routes while
// HTTP.ADDRESS is empty logs a warning: nothing serves them.
func Plugin() (entrypoint.Plugin, http.Handler) {
	r := newRouter()
	return &plugin{router: r}, r
}

type plugin struct{ router *router }

func (*plugin) Kind() entrypoint.Kind { return entrypoint.KindHTTP }

// Serve builds the service's HTTP server, bounded by HTTP.MAX_BODY_SIZE and
// HTTP.WRITE_TIMEOUT, traced and measured by otelhttp when telemetry is on,
// and mounts its routes.
func (p *plugin) Serve(s *entrypoint.Service) (entrypoint.Server, error) {
	if len(entrypoint.Of[*Route](s.Registry)) == 0 {
		return nil, nil
	}
	cfg := s.Settings.HTTP
	srv := newServer(s.Registry, serverConfig{
		Service: s.Name, Pool: s.Pool, ParentCallsTracked: s.Settings.ParentCallsTracked, Logger: s.Logger,
		Interceptors: s.Interceptors, Instrument: instrument(s),
		MaxBodySize: cfg.MaxBodySize, WriteTimeout: cfg.WriteTimeout,
	})
	if err := srv.Mount(p.router); err != nil {
		return nil, err
	}
	return &pluginServer{srv: srv, s: s}, nil
}

// pluginServer drives a server as an entrypoint.Server.
type pluginServer struct {
	srv *server
	s   *entrypoint.Service
}

func (p *pluginServer) Start(context.Context) error {
	p.srv.Start()
	if p.s.Settings.HTTP.Address == "" {
		p.s.Logger.Warn("hypha: HTTP routes are not served: set HTTP.ADDRESS", "routes", p.srv.Routes())
	}
	return nil
}

func (p *pluginServer) Drain(context.Context) error {
	p.srv.Drain()
	return nil
}

// Close stops taking requests, as Drain does: the listener is the process's.
func (p *pluginServer) Close() error {
	p.srv.Drain()
	return nil
}

// instrument wraps a route's handler in otelhttp: a server span named after
// the route's pattern ("GET /users/{id}") that continues the client's trace,
// and HTTP server metrics. What telemetry leaves off (traces or metrics) is
// a no-op, never the global provider; with both off it is nil.
func instrument(s *entrypoint.Service) func(pattern string, h http.Handler) http.Handler {
	var opts []otelhttp.Option
	if s.TracerProvider != nil {
		opts = append(opts, otelhttp.WithTracerProvider(s.TracerProvider), otelhttp.WithPropagators(s.Propagator))
	}
	if s.MeterProvider != nil {
		opts = append(opts, otelhttp.WithMeterProvider(s.MeterProvider))
	}
	if len(opts) == 0 {
		return nil
	}
	// The server's name and port are HTTP.ADDRESS's (with port 0 no port),
	// never the request's Host header: each Host a client sent would be new
	// series.
	opts = append([]otelhttp.Option{
		otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
	}, append(opts, otelhttp.WithServerName(s.Settings.HTTP.Address))...)
	return func(pattern string, h http.Handler) http.Handler {
		return otelhttp.NewHandler(h, pattern, opts...)
	}
}
