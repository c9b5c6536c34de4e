package entrypoint

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// Plugin is one kind of entrypoint: it serves a service's registered
// entrypoints of that kind. The framework holds a list of plugins (RPC,
// events, timers and HTTP by default, and any the app adds) and drives each
// service through them, knowing no kind by name.
type Plugin interface {
	// Kind is the kind of entrypoint the plugin serves.
	Kind() Kind
	// Serve builds what serves the entrypoints of the plugin's kind in
	// s.Registry, once per service, before anything starts. It returns nil,
	// nil when the service has none. Nothing may consume or connect until
	// the Server's Start.
	Serve(s *Service) (Server, error)
}

// Server serves one service's entrypoints of one kind. The framework starts
// the servers of a service in its plugins' order and drains and closes them
// in the reverse order.
type Server interface {
	// Start starts taking work: consuming queues, ticking, answering.
	Start(ctx context.Context) error
	// Drain stops taking new work; work already running goes on. ctx bounds
	// waiting for the broker to confirm.
	Drain(ctx context.Context) error
	// Close releases what the server holds once the service's workers are
	// done or given up on; unfinished work goes back to its queue.
	Close() error
}

// Readier is implemented by a Server that can be unready while started (a
// consumer lost, say): the framework's /readyz answers 503 with its error.
type Readier interface {
	Ready() error
}

// ConsumerCounter is implemented by a Plugin whose servers consume queues.
// Consumers says how many queues the entrypoints in r consume; the framework
// shares the service's MAX_WORKERS among every plugin's consumers and hands
// each plugin its shares in Service.Prefetches.
type ConsumerCounter interface {
	Consumers(r *Registry) int
}

// Service is what a Plugin serves a service with: the service's registry and
// everything its entrypoints share.
type Service struct {
	Name     string    // the service's name
	Registry *Registry // its entrypoints, every kind's
	// Broker is the app's broker connection, opened before Start.
	Broker transport.Broker
	// Pool runs the service's workers, MAX_WORKERS at most, shared by every
	// kind: a plugin hands it to its Consumers (ConsumerConfig.Pool) and
	// runs any other work (a tick, a request) with its Go or GoSized, which
	// wait for a free worker, and waits for it with Wait.
	Pool *worker.Pool
	// Prefetches are the prefetches of the plugin's queues, as many as its
	// Consumers said, in the order it counted them; empty when the plugin
	// counts none.
	Prefetches []int
	// Interceptors wrap every run of every entrypoint: the service's
	// tracing and metrics (when on), then the app's.
	Interceptors []Interceptor
	Logger       *slog.Logger
	// Settings are the app's loaded settings.
	Settings config.Settings
	// TracerProvider and Propagator are the service's tracing, nil when
	// TRACING.EXPORTER is "none"; MeterProvider its metrics, nil when
	// METRICS.ADDRESS is empty. A plugin adds telemetry of its own (beyond
	// what the Interceptors record of every run) only when they are set.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
	MeterProvider  metric.MeterProvider
}

// Description is what an entrypoint says of itself, for introspection.
type Description struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"` // the entrypoint's name, EntrypointName
	Doc  string `json:"doc,omitempty"`
	// Detail is what is particular to the kind, as JSON values: an RPC
	// method's arguments, an event handler's source, a timer's interval, an
	// HTTP route's pattern.
	Detail map[string]any `json:"detail,omitempty"`
}
