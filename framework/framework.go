// Package framework runs Hypha services: it builds one go.uber.org/fx app in
// which each service is a module of its own, injects its dependencies (its
// Config, a *slog.Logger, its event dispatcher, and proxies to the services
// it calls), wires its entrypoints (RPC methods, event handlers, timers, HTTP
// routes) to the broker, RabbitMQ or the embedded one of a memory:// AMQP_URI,
// and runs until SIGINT or SIGTERM.
//
// Configuration is package config's: New loads it with config.Load, logs its
// warnings, and injects it as Config, an alias of config.Config. Settings, the
// defaults (config.DefaultSettings) and the --config flag's parsing (config.Path) live there
// only, so that a program that only reads config.yaml need not link framework.
//
//	func main() {
//		framework.Run(framework.Service("calculator", NewCalculator))
//	}
package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport/dial"
)

// stopMargin is the time Stop allows beyond GRACE_PERIOD to close connections.
const stopMargin = 5 * time.Second

// Option configures an app built by New or Run.
type Option interface{ apply(*appConfig) }

type optionFunc func(*appConfig)

func (f optionFunc) apply(c *appConfig) { f(c) }

type appConfig struct {
	services   []*serviceDef
	configPath string
	overrides  map[string]any
	logger     *slog.Logger
	fxOptions  []fx.Option
	// interceptors are the app's, of every kind and side.
	interceptors []entrypoint.Interceptor
	plugins      []entrypoint.Plugin
}

// ConfigFile reads config from path instead of $HYPHA_CONFIG or ./config.yaml.
func ConfigFile(path string) Option {
	return optionFunc(func(c *appConfig) { c.configPath = path })
}

// ConfigValues overrides config keys (dotted or nested, any case) over the
// file and the environment: for tests and for code that computes settings.
func ConfigValues(values map[string]any) Option {
	return optionFunc(func(c *appConfig) {
		if c.overrides == nil {
			c.overrides = map[string]any{}
		}
		for k, v := range values {
			c.overrides[k] = v
		}
	})
}

// Logger sends the app's logs to l instead of stderr, in LOG_FORMAT at LOG_LEVEL; l's own handler
// decides both.
func Logger(l *slog.Logger) Option {
	return optionFunc(func(c *appConfig) { c.logger = l })
}

// Options adds fx options to the app, for dependencies shared by every
// service or for embedding Hypha in a larger fx app.
func Options(opts ...fx.Option) Option {
	return optionFunc(func(c *appConfig) { c.fxOptions = append(c.fxOptions, opts...) })
}

// Interceptors wrap, in the order given (the first is outermost), every run
// of every entrypoint of the app's services, whatever its kind: RPC calls,
// event handler runs, timer ticks and HTTP requests; and every RPC call and
// event dispatch the services make (entrypoint.Call says which, and which
// side). They run inside the spans of TRACING and the measures of METRICS.
func Interceptors(ics ...entrypoint.Interceptor) Option {
	return optionFunc(func(c *appConfig) { c.interceptors = append(c.interceptors, ics...) })
}

// App is a set of services that starts and stops together.
type App struct {
	fx        *fx.App
	config    Config
	log       *slog.Logger
	telemetry *telemetry
	health    *health

	stopOnce sync.Once
	done     chan struct{} // closed once stopped
	stopErr  error         // what stopping returned; read after done
	mu       sync.Mutex
	err      error // why the app stopped by itself
}

// New builds the app: it loads config, checks every service's constructor and
// registrations, and returns an app ready to Start. Nothing connects yet.
func New(opts ...Option) (*App, error) {
	var ac appConfig
	for _, o := range opts {
		o.apply(&ac)
	}
	if len(ac.services) == 0 {
		return nil, errors.New("hypha: no services: pass framework.Service(name, constructor) for each")
	}
	cfg, err := config.Load(ac.configPath, ac.overrides)
	if err != nil {
		return nil, err
	}
	// AMQP_SSL's files are read now too, so that a bad one fails New plainly
	// rather than inside fx's error; the connection reads them again.
	if _, err := cfg.AMQPSSL.TLSConfig(); err != nil {
		return nil, err
	}
	log := ac.logger
	if log == nil {
		log = newLogger(os.Stderr, cfg.Settings)
	}
	log = slog.New(contextHandler{log.Handler()})
	for _, w := range cfg.Warnings() {
		log.Warn("hypha: " + w)
	}
	a := &App{config: cfg, log: log, done: make(chan struct{})}
	name := connectionName(ac.services)
	seen := map[string]bool{}
	var built *telemetry // shut down again when New fails
	fxOpts := []fx.Option{
		fx.WithLogger(func() fxevent.Logger {
			// fx's own lines, failures included, are for debugging: a failed
			// start or stop is reported once, by New, Start, Stop or Run.
			l := &fxevent.SlogLogger{Logger: log}
			l.UseLogLevel(slog.LevelDebug)
			l.UseErrorLevel(slog.LevelDebug)
			return l
		}),
		fx.Provide(func(lc fx.Lifecycle) *endpoints { return newEndpoints(lc, log, cfg.HTTP) }),
		fx.Provide(func(lc fx.Lifecycle, e *endpoints) (t *telemetry, err error) {
			t, err = newTelemetry(lc, cfg, e)
			built = t
			return t, err
		}),
		fx.Provide(func(lc fx.Lifecycle, t *telemetry) (*connection, error) {
			return newConnection(lc, cfg, log, t, name, a.gaveUp)
		}),
		fx.Provide(func(lc fx.Lifecycle, c *connection) *runtimes { return newRuntimes(lc, c, cfg, log) }),
		// One budget for every service of the app: memory is the process's.
		fx.Supply(worker.NewBudget(cfg.MaxInflightBytes)),
		fx.Provide(func(e *endpoints, c *connection, r *runtimes) *health { return newHealth(cfg, e, c, r) }),
		provideKinds(cfg, &ac),
	}
	for _, s := range ac.services {
		if seen[s.name] {
			return nil, fmt.Errorf("hypha: service %q is given twice", s.name)
		}
		seen[s.name] = true
		mod, err := s.module(cfg, log, &ac)
		if err != nil {
			return nil, err
		}
		fxOpts = append(fxOpts, mod)
	}
	fxOpts = append(fxOpts, ac.fxOptions...)
	fxOpts = append(fxOpts, fx.Populate(&a.telemetry, &a.health))
	a.fx = fx.New(fxOpts...)
	if err := a.fx.Err(); err != nil {
		if built != nil { // its tracer providers run exporters of their own
			ctx, cancel := context.WithTimeout(context.Background(), stopMargin)
			defer cancel()
			_ = built.shutdown(ctx)
		}
		return nil, fmt.Errorf("hypha: %w", err)
	}
	return a, nil
}

// Start connects to the broker and starts every service's consumers. While
// the broker cannot be reached it keeps trying per RECONNECT, until ctx ends.
func (a *App) Start(ctx context.Context) error {
	if err := a.fx.Start(ctx); err != nil {
		return err
	}
	a.health.started.Store(true)
	return nil
}

// Stop stops every service gracefully: stop consuming, let running workers
// finish within GRACE_PERIOD and reply, then close the connection. It returns
// within GRACE_PERIOD plus a few seconds, or sooner if ctx ends. The app is
// not ready (/readyz) from the moment Stop is called. Calls after the first
// wait for it to finish and return what it returned.
func (a *App) Stop(ctx context.Context) error {
	first := false
	a.stopOnce.Do(func() { first = true })
	if !first {
		select {
		case <-a.done:
			return a.stopErr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	a.health.stopping.Store(true)
	ctx, cancel := context.WithTimeout(ctx, a.config.GracePeriod+stopMargin)
	defer cancel()
	a.stopErr = a.fx.Stop(ctx)
	close(a.done)
	return a.stopErr
}

// Done is closed once the app has stopped: by Stop, or by itself because the
// broker connection was lost for good (see Err).
func (a *App) Done() <-chan struct{} { return a.done }

// Err says why the app stopped by itself: reconnecting to the broker gave up
// after RECONNECT.MAX_ELAPSED, for instance because the broker kept refusing
// the login. It is nil while the app runs and after a Stop from outside.
func (a *App) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// gaveUp stops the app by itself, once, when the connection cannot be
// restored: an app that can no longer consume or call must not look alive.
func (a *App) gaveUp(err error) {
	a.mu.Lock()
	first := a.err == nil
	if first {
		a.err = err
	}
	a.mu.Unlock()
	if !first {
		return
	}
	a.log.Error("hypha: stopping: the broker connection cannot be restored", "error", err)
	go func() { _ = a.Stop(context.Background()) }() // not on the broker's goroutine: Stop waits for it
}

// MetricsAddress is the host:port where the started app serves Prometheus
// /metrics, or "" when METRICS.ADDRESS is not set (a port 0 in it is resolved).
func (a *App) MetricsAddress() string { return a.telemetry.metricsAddress() }

// HealthAddress is the host:port where the started app serves /healthz and
// /readyz (HEALTH.ADDRESS, else METRICS.ADDRESS, a port 0 in it resolved), or
// "" when neither is set.
func (a *App) HealthAddress() string {
	_, address := healthAddress(a.config)
	if address == "" {
		return ""
	}
	return a.telemetry.endpoints.address(address)
}

// HTTPAddress is the host:port where the started app serves its services'
// HTTP routes (HTTP.ADDRESS, a port 0 in it resolved), or "" when HTTP.ADDRESS
// is not set.
func (a *App) HTTPAddress() string {
	if a.config.HTTP.Address == "" {
		return ""
	}
	return a.telemetry.endpoints.address(a.config.HTTP.Address)
}

// Config is the configuration the app was built with.
func (a *App) Config() Config { return a.config }

// Run builds the app, starts it, and blocks until SIGINT or SIGTERM, then stops
// it gracefully. It reads the config file from a --config PATH argument when
// given. When the app cannot start it prints why and exits with status 1.
// When the app stops by itself (the broker connection could not be restored
// within RECONNECT.MAX_ELAPSED) it logs why once and exits with status 1, so
// that a supervisor restarts it.
func Run(opts ...Option) {
	path, err := config.Path(os.Args[1:])
	if err != nil {
		fail(err)
	}
	if path != "" {
		opts = append([]Option{ConfigFile(path)}, opts...)
	}
	app, err := New(opts...)
	if err != nil {
		fail(err)
	}
	// Starting waits for the broker (per RECONNECT) until a signal says stop.
	sigs, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	if err := app.Start(sigs); err != nil {
		fail(err)
	}
	select {
	case <-sigs.Done():
		app.log.Info("hypha: stopping", "grace_period", app.config.GracePeriod)
	case <-app.Done():
	}
	stopSignals()
	ctx, cancel := context.WithTimeout(context.Background(), app.config.GracePeriod+stopMargin)
	defer cancel()
	err = app.Stop(ctx)
	if app.Err() != nil {
		os.Exit(1) // gaveUp has logged why
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hypha: stopped with errors:", err)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hypha: cannot start:", err)
	os.Exit(1)
}

// connection is the app's one broker connection, opened on start and closed
// after every service has stopped: RabbitMQ or the embedded broker, as
// AMQP_URI's scheme says.
type connection struct{ broker dial.Broker }

func newConnection(lc fx.Lifecycle, cfg Config, log *slog.Logger, t *telemetry, name string,
	onGiveUp func(error)) (*connection, error) {
	broker, err := dial.Dial(context.Background(), cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name(name),
		dial.Logger(log), dial.OnRestore(t.restored), dial.OnGiveUp(onGiveUp), dial.Lazy())
	if err != nil {
		return nil, err
	}
	c := &connection{broker: broker}
	if err := t.connectedGauge(c.broker.Connected); err != nil {
		return nil, err
	}
	lc.Append(fx.Hook{
		OnStart: c.broker.Connect,
		OnStop:  func(context.Context) error { return c.broker.Close() },
	})
	return c, nil
}

// connectionName names the process's connection in RabbitMQ's management
// tools after its services, host and pid: "calculator,user_service@host:1234".
func connectionName(services []*serviceDef) string {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = s.name
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return strings.Join(names, ",") + "@" + host + ":" + strconv.Itoa(os.Getpid())
}
