package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"

	"go.uber.org/fx"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/internal/label"
	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
)

// serviceDef is one service given to Service.
type serviceDef struct {
	name        string
	constructor any
	extra       []fx.Option
}

// Service adds a service named name, built by constructor: a function whose
// parameters fx injects and whose first result implements
// entrypoint.Registrar (it may return an error second). The constructor can
// ask for the service's Config, its *slog.Logger, its *events.Dispatcher (or
// events.EventDispatcher), and proxies to other services, declared as tagged
// fields of an fx.In struct, of type *rpc.Proxy or rpc.Caller (which a unit
// test can fake):
//
//	type deps struct {
//		fx.In
//		Calc *rpc.Proxy `name:"calculator"`
//	}
//
// Everything provided to a service is its own: two services in one app each
// get their own proxies, reply queue and logger. extra fx options are added to
// the service's module.
func Service(name string, constructor any, extra ...fx.Option) Option {
	return optionFunc(func(c *appConfig) {
		c.services = append(c.services, &serviceDef{name: name, constructor: constructor, extra: extra})
	})
}

// restriction names the only entrypoints a service runs; see RestrictEntrypoints.
type restriction struct{ names []string }

// RestrictEntrypoints is an option of Service that runs only the named
// entrypoints of the service (nameko's restrict_entrypoints): a test can run
// one event handler or method without the others consuming. A name the
// service does not register stops New with an error listing those it does.
// Give it once per service. The service still answers the built-in
// introspection method (describing what it runs), on its RPC queue.
func RestrictEntrypoints(names ...string) fx.Option {
	return fx.Supply(fx.Private, &restriction{names: append([]string{}, names...)})
}

var (
	registrarType = reflect.TypeFor[entrypoint.Registrar]()
	proxyType     = reflect.TypeFor[*rpc.Proxy]()
	callerType    = reflect.TypeFor[rpc.Caller]()
	fxInType      = reflect.TypeFor[fx.In]()
	lifecycleType = reflect.TypeFor[fx.Lifecycle]()
	runtimeType   = reflect.TypeFor[*serviceRuntime]()
)

// module is the service's fx.Module: its private logger, config, proxies and
// constructor, and an invoke that registers its entrypoints and hooks its
// start and stop into the app's lifecycle.
func (s *serviceDef) module(cfg Config, log *slog.Logger, ac *appConfig) (fx.Option, error) {
	if s.name == "" {
		return nil, errors.New("hypha: a service needs a name")
	}
	ctor := reflect.ValueOf(s.constructor)
	if ctor.Kind() != reflect.Func || ctor.Type().NumOut() == 0 {
		return nil, fmt.Errorf("hypha: service %q: the constructor must be a function returning the service, got %T", s.name, s.constructor)
	}
	svcType := ctor.Type().Out(0)
	if !svcType.Implements(registrarType) {
		return nil, fmt.Errorf("hypha: service %q: %s has no Register(*entrypoint.Registry) method: add one that registers its entrypoints", s.name, svcType)
	}
	proxies, err := proxiesOf(s.name, ctor.Type())
	if err != nil {
		return nil, err
	}
	svcLog := log.With("service", s.name)
	opts := []fx.Option{
		fx.Supply(fx.Private, cfg),
		fx.Provide(fx.Private, func() *slog.Logger { return svcLog }),
		fx.Provide(fx.Private, func(p runtimeParams) (*serviceRuntime, error) {
			rt, err := newServiceRuntime(s.name, cfg, svcLog, p.Conn, p.Telemetry, p.All, p.Budget, ac, proxies)
			if rt != nil {
				rt.mux = p.HTTP
			}
			if rt != nil && p.Only != nil {
				rt.only = p.Only.names
			}
			return rt, err
		}),
		fx.Provide(fx.Private, s.constructor),
	}
	opts = append(opts,
		fx.Provide(fx.Private, func(rt *serviceRuntime) *events.Dispatcher { return rt.dispatcher }),
		fx.Provide(fx.Private, func(rt *serviceRuntime) events.EventDispatcher { return rt.dispatcher }),
	)
	for _, target := range proxies {
		tag := fx.ResultTags(fmt.Sprintf("name:%q", target))
		opts = append(opts,
			fx.Provide(fx.Private, fx.Annotate(func(rt *serviceRuntime) *rpc.Proxy { return rt.client.Proxy(target) }, tag)),
			fx.Provide(fx.Private, fx.Annotate(func(rt *serviceRuntime) rpc.Caller { return rt.client.Proxy(target) }, tag)),
		)
	}
	opts = append(opts, s.extra...)
	opts = append(opts, fx.Invoke(s.invoker(svcType)))
	return fx.Module(s.name, opts...), nil
}

// runtimeParams are what a service's runtime is built from; Only is there
// when the service was given RestrictEntrypoints.
type runtimeParams struct {
	fx.In
	Conn      *connection
	Telemetry *telemetry
	All       *runtimes
	Budget    *entrypoint.Budget
	HTTP      *httpentry.Mux
	Only      *restriction `optional:"true"`
}

// invoker builds func(svc <svcType>, rt *serviceRuntime, lc fx.Lifecycle) error,
// which fx calls with the constructed service.
func (s *serviceDef) invoker(svcType reflect.Type) any {
	fnType := reflect.FuncOf([]reflect.Type{svcType, runtimeType, lifecycleType}, []reflect.Type{reflect.TypeFor[error]()}, false)
	return reflect.MakeFunc(fnType, func(args []reflect.Value) []reflect.Value {
		svc := args[0].Interface().(entrypoint.Registrar)
		rt := args[1].Interface().(*serviceRuntime)
		lc := args[2].Interface().(fx.Lifecycle)
		err := rt.register(svc)
		if err == nil {
			lc.Append(fx.Hook{OnStart: rt.start}) // the app's runtimes stop them all together
		}
		errV := reflect.New(reflect.TypeFor[error]()).Elem()
		if err != nil {
			errV.Set(reflect.ValueOf(err))
		}
		return []reflect.Value{errV}
	}).Interface()
}

// proxiesOf finds the services a constructor calls: the `name` tags of the
// *rpc.Proxy and rpc.Caller fields of its fx.In parameter structs (embedded
// ones included), each name once.
func proxiesOf(service string, ctor reflect.Type) ([]string, error) {
	var names []string
	for i := range ctor.NumIn() {
		p := ctor.In(i)
		if p == proxyType || p == callerType {
			return nil, fmt.Errorf("hypha: service %q: a %s parameter does not say which service it calls: "+
				"declare it as a field of an fx.In struct tagged `name:\"<service>\"`", service, p)
		}
		if p.Kind() == reflect.Struct && embedsFxIn(p) {
			found, err := proxyFields(service, p)
			if err != nil {
				return nil, err
			}
			for _, name := range found {
				if !slices.Contains(names, name) {
					names = append(names, name)
				}
			}
		}
	}
	return names, nil
}

// proxyFields lists the proxy names of an fx.In struct and of the fx.In
// structs embedded in it.
func proxyFields(service string, t reflect.Type) ([]string, error) {
	var names []string
	for j := range t.NumField() {
		f := t.Field(j)
		switch {
		case f.Type == proxyType || f.Type == callerType:
			name := f.Tag.Get("name")
			if name == "" {
				return nil, fmt.Errorf("hypha: service %q: proxy field %s needs the service it calls: tag it `name:\"<service>\"`", service, f.Name)
			}
			names = append(names, name)
		case f.Anonymous && f.Type.Kind() == reflect.Struct && f.Type != fxInType && embedsFxIn(f.Type):
			nested, err := proxyFields(service, f.Type)
			if err != nil {
				return nil, err
			}
			names = append(names, nested...)
		}
	}
	return names, nil
}

func embedsFxIn(t reflect.Type) bool {
	for i := range t.NumField() {
		if f := t.Field(i); f.Anonymous && f.Type == fxInType {
			return true
		}
	}
	return false
}

// serviceRuntime is what the container runs for one service: its RPC server,
// its event handlers, and, when it calls other services, its RPC client.
type serviceRuntime struct {
	name       string
	cfg        Config
	log        *slog.Logger
	pool       *entrypoint.Pool
	client     *rpc.Client       // nil when the service calls nobody
	server     *rpc.Server       // every service has one: it answers the introspection method at least
	handlers   *events.Server    // nil when the service handles no events
	timers     *timer.Server     // nil when the service has no timers
	http       *httpentry.Server // nil when the service has no HTTP routes
	mux        *httpentry.Mux    // the process's, which the routes are mounted on
	instrument func(pattern string, h http.Handler) http.Handler
	dispatcher *events.Dispatcher
	conn       *connection
	ics        []entrypoint.Interceptor // telemetry's, then the app's: of every kind and side
	calls      []string                 // the services this one has proxies to
	only       []string                 // the entrypoints it runs, when restricted
	onDead     func(handler, event, how string)
	telemetry  *telemetry
	onNoReply  func(method string)
	all        *runtimes // the app's running services, stopped together
}

// newServiceRuntime builds a service's runtime; telemetry's interceptors
// wrap the app's, so that those run inside the call's span.
func newServiceRuntime(name string, cfg Config, log *slog.Logger, conn *connection, t *telemetry, all *runtimes,
	budget *entrypoint.Budget, ac *appConfig, calls []string) (*serviceRuntime, error) {
	ics, instrument, err := t.interceptors(name, calls)
	if err != nil {
		return nil, err
	}
	ics = append(ics, ac.interceptors...)
	rt := &serviceRuntime{name: name, cfg: cfg, log: log, conn: conn, pool: entrypoint.NewPool(cfg.MaxWorkers, entrypoint.WithBudget(budget)),
		ics: ics, instrument: instrument, calls: calls, all: all,
		dispatcher: events.NewDispatcher(conn.broker, events.DispatcherConfig{
			Source: name, PublishTimeout: cfg.Events.PublishTimeout, Interceptors: ics,
		}),
	}
	rt.onDead = t.deadLetters(name)
	rt.telemetry = t
	rt.onNoReply = t.noReplyToCalls(name)
	if err := t.workersGauge(name, rt.pool.Busy); err != nil {
		return nil, err
	}
	if len(calls) > 0 {
		rc := rpc.ConfigFrom(cfg.Settings)
		rc.Owner, rc.Logger, rc.Interceptors = name, log, ics
		rt.client = rpc.NewClient(conn.broker, rc)
		if err := t.inFlightGauge(name, rt.client.InFlight); err != nil {
			return nil, err
		}
	}
	return rt, nil
}

// register collects the service's entrypoints and builds what serves them.
func (rt *serviceRuntime) register(svc entrypoint.Registrar) error {
	reg := entrypoint.NewRegistry(rt.name)
	svc.Register(reg)
	if err := reg.Err(); err != nil {
		return err
	}
	if rt.only != nil {
		if err := reg.Keep(rt.only...); err != nil {
			return fmt.Errorf("RestrictEntrypoints: %w", err)
		}
	}
	// Every service answers the built-in introspection method, one with
	// only event handlers, timers or HTTP routes too, so every service has
	// an RPC queue. The queues' prefetches share MAX_WORKERS: the RPC queue
	// first, then each handler's, so that no instance holds more than it
	// can run.
	introspect.Register(reg)
	handlers := len(entrypoint.Of[*events.Handler](reg))
	prefetches := entrypoint.SplitPrefetch(rt.pool.Size(), handlers+1)
	methods := label.NewSet(0, rpcMethods(reg)...)
	rt.server = rpc.NewServer(rt.conn.broker, reg, rpc.ServerConfig{
		Service: rt.name, Exchange: rt.cfg.RPCExchange, Pool: rt.pool, Prefetch: prefetches[0],
		ParentCallsTracked: rt.cfg.ParentCallsTracked, Logger: rt.log, Interceptors: rt.ics,
		OnExpired: rt.telemetry.expiredCalls(rt.name, methods), OnDuplicate: rt.telemetry.duplicateCalls(rt.name, methods),
		OnNoReplyTo: rt.onNoReply, RedactUnexpectedErrors: rt.cfg.RedactUnexpectedErrors,
	})
	prefetches = prefetches[1:]
	if handlers > 0 {
		rt.handlers = events.NewServer(rt.conn.broker, reg, events.ServerConfig{
			Service: rt.name, Pool: rt.pool, MaxRetries: rt.cfg.Events.MaxRetries, Prefetches: prefetches,
			HandlerTimeout: rt.cfg.Events.HandlerTimeout, RetryDelay: events.RetryDelay(rt.cfg.Events.RetryDelay),
			ParentCallsTracked: rt.cfg.ParentCallsTracked, Logger: rt.log, Interceptors: rt.ics,
			NamekoQueues: rt.cfg.Events.NamekoQueues, OnDeadLetter: rt.onDead,
		})
	}
	if len(entrypoint.Of[*timer.Timer](reg)) > 0 {
		rt.timers = timer.NewServer(rt.conn.broker, reg, timer.ServerConfig{
			Service: rt.name, Pool: rt.pool, ParentCallsTracked: rt.cfg.ParentCallsTracked, Logger: rt.log,
			Interceptors: rt.ics,
		})
	}
	if len(entrypoint.Of[*httpentry.Route](reg)) > 0 {
		rt.http = httpentry.NewServer(reg, httpentry.ServerConfig{
			Service: rt.name, Pool: rt.pool, ParentCallsTracked: rt.cfg.ParentCallsTracked, Logger: rt.log,
			Interceptors: rt.ics, Instrument: rt.instrument,
			MaxBodySize: rt.cfg.HTTP.MaxBodySize, WriteTimeout: rt.cfg.HTTP.WriteTimeout,
		})
		if err := rt.http.Mount(rt.mux); err != nil {
			return err
		}
	}
	return nil
}

// rpcMethods are the names of the RPC methods in reg, raw ones included.
func rpcMethods(reg *entrypoint.Registry) []string {
	var names []string
	for _, m := range entrypoint.Of[*rpc.Method](reg) {
		names = append(names, m.EntrypointName())
	}
	for _, m := range entrypoint.Of[*rpc.RawMethod](reg) {
		names = append(names, m.EntrypointName())
	}
	return names
}

// start starts the client, then the event handlers, then the RPC server (so
// that a service answering calls also has its event queues bound), then opens
// its HTTP routes and starts its timers, whose requests and ticks may call it.
// When a part fails, the parts already started are closed again.
func (rt *serviceRuntime) start(ctx context.Context) error {
	err := func() error {
		if rt.client != nil {
			if err := rt.client.Start(ctx); err != nil {
				return err
			}
		}
		if rt.handlers != nil {
			if err := rt.handlers.Start(ctx); err != nil {
				return err
			}
		}
		if rt.server != nil {
			if err := rt.server.Start(ctx); err != nil {
				return err
			}
		}
		if rt.http != nil {
			rt.http.Start()
			if rt.cfg.HTTP.Address == "" {
				rt.log.Warn("hypha: HTTP routes are not served: set HTTP.ADDRESS", "routes", rt.http.Routes())
			}
		}
		if rt.timers != nil {
			return rt.timers.Start(ctx)
		}
		return nil
	}()
	if err != nil {
		if rt.http != nil {
			rt.http.Drain()
		}
		_ = rt.close()
		return fmt.Errorf("service %q: %w", rt.name, err)
	}
	rt.all.add(rt)
	rt.log.Info("hypha: service started", "max_workers", rt.pool.Size())
	return nil
}

// drain stops the service taking HTTP requests, ticks, calls and events;
// running ones go on. The
// broker's cancel-ok is waited for briefly, apart from the grace period.
func (rt *serviceRuntime) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	var errs []error
	if rt.http != nil {
		rt.http.Drain()
	}
	if rt.timers != nil {
		errs = append(errs, rt.timers.Drain(ctx))
	}
	if rt.server != nil {
		errs = append(errs, rt.server.Drain(ctx))
	}
	if rt.handlers != nil {
		errs = append(errs, rt.handlers.Drain(ctx))
	}
	return errors.Join(errs...)
}

// close closes the consumers and the client, which workers may have been
// using until now; unfinished work goes back to its queue.
func (rt *serviceRuntime) close() error {
	var errs []error
	if rt.timers != nil {
		errs = append(errs, rt.timers.Close())
	}
	if rt.server != nil {
		errs = append(errs, rt.server.Close())
	}
	if rt.handlers != nil {
		errs = append(errs, rt.handlers.Close())
	}
	if rt.client != nil {
		errs = append(errs, rt.client.Close())
	}
	return errors.Join(errs...)
}
