// Package framework runs Hypha services: it builds one go.uber.org/fx app in
// which each service is a module of its own, injects its dependencies (its
// Config, a *slog.Logger, and proxies to the services it calls), wires its
// entrypoints to RabbitMQ and runs until SIGINT or SIGTERM.
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
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/amqp"
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
	serverICs  []rpc.ServerInterceptor
	clientICs  []rpc.ClientInterceptor
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

// WithLogger sends the app's logs to l instead of a text handler on stderr at LOG_LEVEL.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *appConfig) { c.logger = l })
}

// Options adds fx options to the app, for dependencies shared by every
// service or for embedding Hypha in a larger fx app.
func Options(opts ...fx.Option) Option {
	return optionFunc(func(c *appConfig) { c.fxOptions = append(c.fxOptions, opts...) })
}

// ServerInterceptors wrap every call every service of the app handles, in the
// order given (the first is outermost).
func ServerInterceptors(ics ...rpc.ServerInterceptor) Option {
	return optionFunc(func(c *appConfig) { c.serverICs = append(c.serverICs, ics...) })
}

// ClientInterceptors wrap every call every service of the app makes through
// its proxies, in the order given (the first is outermost).
func ClientInterceptors(ics ...rpc.ClientInterceptor) Option {
	return optionFunc(func(c *appConfig) { c.clientICs = append(c.clientICs, ics...) })
}

// App is a set of services that starts and stops together.
type App struct {
	fx        *fx.App
	config    Config
	log       *slog.Logger
	telemetry *telemetry
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
	cfg, err := LoadConfig(ac.configPath, ac.overrides)
	if err != nil {
		return nil, err
	}
	log := ac.logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	}
	log = slog.New(contextHandler{log.Handler()})
	seen := map[string]bool{}
	fxOpts := []fx.Option{
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: log}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.Provide(func(lc fx.Lifecycle) (*telemetry, error) { return newTelemetry(lc, cfg, log) }),
		fx.Provide(func(lc fx.Lifecycle, t *telemetry) *connection { return newConnection(lc, cfg, log, t) }),
		fx.Provide(func(lc fx.Lifecycle, c *connection) *runtimes { return newRuntimes(lc, c, cfg, log) }),
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
	a := &App{config: cfg, log: log}
	fxOpts = append(fxOpts, ac.fxOptions...)
	fxOpts = append(fxOpts, fx.Populate(&a.telemetry))
	a.fx = fx.New(fxOpts...)
	if err := a.fx.Err(); err != nil {
		return nil, fmt.Errorf("hypha: %w", err)
	}
	return a, nil
}

// Start connects to the broker and starts every service's consumers. While
// the broker cannot be reached it keeps trying per RECONNECT, until ctx ends.
func (a *App) Start(ctx context.Context) error { return a.fx.Start(ctx) }

// Stop stops every service gracefully: stop consuming, let running workers
// finish within GRACE_PERIOD and reply, then close the connection. It returns
// within GRACE_PERIOD plus a few seconds, or sooner if ctx ends.
func (a *App) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.config.GracePeriod+stopMargin)
	defer cancel()
	return a.fx.Stop(ctx)
}

// MetricsAddress is the host:port where the started app serves Prometheus
// /metrics, or "" when METRICS.ADDRESS is not set (a port 0 in it is resolved).
func (a *App) MetricsAddress() string { return a.telemetry.metricsAddress() }

// Config is the configuration the app was built with.
func (a *App) Config() Config { return a.config }

// Run builds the app, starts it, and blocks until SIGINT or SIGTERM, then stops
// it gracefully. It reads the config file from a --config PATH argument when
// given. When the app cannot start it prints why and exits with status 1.
func Run(opts ...Option) {
	path, err := ConfigPath(os.Args[1:])
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
	<-sigs.Done()
	stopSignals()
	app.log.Info("hypha: stopping", "grace_period", app.config.GracePeriod)
	ctx, cancel := context.WithTimeout(context.Background(), app.config.GracePeriod+stopMargin)
	defer cancel()
	if err := app.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "hypha: stopped with errors:", err)
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "hypha: cannot start:", err)
	os.Exit(1)
}

// connection is the app's one broker connection, opened on start and closed
// after every service has stopped.
type connection struct{ broker *amqp.Broker }

func newConnection(lc fx.Lifecycle, cfg Config, log *slog.Logger, t *telemetry) *connection {
	c := &connection{broker: amqp.New(cfg.AMQPURI, amqp.Options{
		Heartbeat: heartbeat(cfg.Heartbeat), Name: "hypha", Logger: log, OnRestore: t.restored,
		MaxMessageSize: cfg.MaxMessageSize,
		Reconnect:      amqp.ReconnectPolicy(cfg.Reconnect),
		Retry:          amqp.RetryPolicy(cfg.RPCRetryPolicy),
	})}
	lc.Append(fx.Hook{
		OnStart: c.broker.Connect,
		OnStop:  func(context.Context) error { return c.broker.Close() },
	})
	return c
}

// heartbeat maps config's 0 (no heartbeat) onto amqp.Options' negative.
func heartbeat(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
