package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/fx"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/introspection"
	"github.com/hypha-go/hypha/internal/worker"
	_ "github.com/hypha-go/hypha/introspect" // fills introspection.Register
	"github.com/hypha-go/hypha/rpc"
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
				rt.kinds = p.Kinds
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
	Budget    *worker.Budget
	Kinds     *kinds
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

// serviceRuntime is what the container runs for one service: a server per
// kind of entrypoint it has (an RPC one at least: every service answers the
// introspection method), and, when it calls other services, its RPC client.
type serviceRuntime struct {
	name       string
	cfg        Config
	log        *slog.Logger
	pool       *worker.Pool
	client     *rpc.Client // nil when the service calls nobody
	dispatcher *events.Dispatcher
	conn       *connection
	kinds      *kinds
	servers    []entrypoint.Server      // in the kinds' order, those with entrypoints
	ics        []entrypoint.Interceptor // telemetry's, then the app's: of every kind and side
	telemetry  serviceTelemetry
	calls      []string  // the services this one has proxies to
	only       []string  // the entrypoints it runs, when restricted
	all        *runtimes // the app's running services, stopped together
}

// newServiceRuntime builds a service's runtime: its pool, its client and
// dispatcher, and the telemetry its kinds' servers are built with.
func newServiceRuntime(name string, cfg Config, log *slog.Logger, conn *connection, t *telemetry, all *runtimes,
	budget *worker.Budget, ac *appConfig, calls []string) (*serviceRuntime, error) {
	st, err := t.forService(name, calls)
	if err != nil {
		return nil, err
	}
	ics := append(st.interceptors[:len(st.interceptors):len(st.interceptors)], ac.interceptors...)
	rt := &serviceRuntime{name: name, cfg: cfg, log: log, conn: conn, pool: worker.NewPool(cfg.MaxWorkers, worker.WithBudget(budget)),
		ics: ics, telemetry: st, calls: calls, all: all,
		dispatcher: events.NewDispatcher(conn.broker, events.DispatcherConfig{
			Source: name, PublishTimeout: cfg.Events.PublishTimeout, Interceptors: ics,
		}),
	}
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

// register collects the service's entrypoints and has each kind build what
// serves them.
func (rt *serviceRuntime) register(svc entrypoint.Registrar) error {
	reg := entrypoint.NewRegistry(rt.name)
	svc.Register(reg)
	if err := reg.Err(); err != nil {
		return err
	}
	if rt.only != nil {
		var err error
		if reg, err = keep(reg, rt.only...); err != nil {
			return fmt.Errorf("RestrictEntrypoints: %w", err)
		}
	}
	// Every service answers the built-in introspection method, one with
	// only event handlers, timers or HTTP routes too, so every service has
	// an RPC queue.
	introspection.Register(reg)
	if err := reg.Err(); err != nil {
		return err
	}
	if err := rt.unserved(reg); err != nil {
		return err
	}
	prefetches := rt.prefetches(reg)
	for i, p := range rt.kinds.plugins {
		srv, err := p.Serve(&entrypoint.Service{
			Name: rt.name, Registry: reg, Broker: rt.conn.broker, Pool: rt.pool, Prefetches: prefetches[i],
			Interceptors: rt.ics, Logger: rt.log, Settings: rt.cfg.Settings,
			TracerProvider: rt.telemetry.tracer, Propagator: rt.telemetry.prop, MeterProvider: rt.telemetry.meters,
		})
		if err != nil {
			return fmt.Errorf("service %q: %s entrypoints: %w", rt.name, p.Kind(), err)
		}
		if srv != nil {
			rt.servers = append(rt.servers, srv)
		}
	}
	return nil
}

// unserved says which entrypoints of reg no plugin serves: one whose Kind
// is not among the app's kinds (its plugin was not given to Plugins).
func (rt *serviceRuntime) unserved(reg *entrypoint.Registry) error {
	have := map[entrypoint.Kind]bool{}
	for _, p := range rt.kinds.plugins {
		have[p.Kind()] = true
	}
	var missing []string
	for _, e := range reg.Entrypoints() {
		if k := e.Describe().Kind; !have[k] {
			missing = append(missing, fmt.Sprintf("%q (kind %q)", e.EntrypointName(), k))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("service %q: no plugin serves entrypoint %s: give the kind's plugin to framework.Plugins",
			rt.name, strings.Join(missing, ", "))
	}
	return nil
}

// prefetches shares MAX_WORKERS among the queues the kinds consume, so that
// no instance holds more than it can run: the i-th plugin's shares are the
// i-th list. The shares go to the kinds from the last to the first, each
// taking its queues in its own order: so the RPC queue, which every service
// has, takes the first share, then the event handlers' queues.
func (rt *serviceRuntime) prefetches(reg *entrypoint.Registry) [][]int {
	counts := make([]int, len(rt.kinds.plugins))
	total := 0
	for i, p := range rt.kinds.plugins {
		if c, ok := p.(entrypoint.ConsumerCounter); ok {
			counts[i] = c.Consumers(reg)
			total += counts[i]
		}
	}
	out := make([][]int, len(counts))
	if total == 0 {
		return out
	}
	shares := worker.SplitPrefetch(rt.pool.Size(), total)
	for i := len(counts) - 1; i >= 0; i-- {
		out[i], shares = shares[:counts[i]:counts[i]], shares[counts[i]:]
	}
	return out
}

// start starts the client, then each kind's server in the kinds' order (see
// newKinds). When one fails, those already started, and the one that
// failed, are closed again, in the reverse order, and so is the client.
func (rt *serviceRuntime) start(ctx context.Context) error {
	started := 0
	err := func() error {
		if rt.client != nil {
			if err := rt.client.Start(ctx); err != nil {
				return err
			}
		}
		for _, srv := range rt.servers {
			started++
			if err := srv.Start(ctx); err != nil {
				return err
			}
		}
		return nil
	}()
	if err != nil {
		_ = rt.closeServers(rt.servers[:started])
		return fmt.Errorf("service %q: %w", rt.name, err)
	}
	rt.all.add(rt)
	rt.log.Info("hypha: service started", "max_workers", rt.pool.Size())
	return nil
}

// drain stops the service taking work of every kind, in the reverse of the
// kinds' order (HTTP requests and ticks first); running work goes on. The
// broker's cancel-ok is waited for briefly, apart from the grace period.
func (rt *serviceRuntime) drain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	var errs []error
	for _, srv := range slices.Backward(rt.servers) {
		errs = append(errs, srv.Drain(ctx))
	}
	return errors.Join(errs...)
}

// close closes the servers, in the reverse of the kinds' order, and the
// client, which workers may have been using until now; unfinished work goes
// back to its queue.
func (rt *serviceRuntime) close() error { return rt.closeServers(rt.servers) }

func (rt *serviceRuntime) closeServers(servers []entrypoint.Server) error {
	var errs []error
	for _, srv := range slices.Backward(servers) {
		errs = append(errs, srv.Close())
	}
	if rt.client != nil {
		errs = append(errs, rt.client.Close())
	}
	return errors.Join(errs...)
}

// ready is nil when every server of the service that can tell is ready.
func (rt *serviceRuntime) ready() error {
	for _, srv := range rt.servers {
		if r, ok := srv.(entrypoint.Readier); ok {
			if err := r.Ready(); err != nil {
				return fmt.Errorf("service %q: %w", rt.name, err)
			}
		}
	}
	return nil
}

// keep returns a registry of r's service with only the named entrypoints of
// r, in r's order, so that a service runs only those (a test's restricted
// service, say). A name r has no entrypoint of is an error listing the names
// it has, and r is returned as it was.
func keep(r *entrypoint.Registry, names ...string) (*entrypoint.Registry, error) {
	all := r.Entrypoints()
	have := make([]string, len(all))
	for i, e := range all {
		have[i] = e.EntrypointName()
	}
	var missing []string
	for _, n := range names {
		if !slices.Contains(have, n) {
			missing = append(missing, strconv.Quote(n))
		}
	}
	if len(missing) > 0 {
		quoted := make([]string, len(have))
		for i, n := range have {
			quoted[i] = strconv.Quote(n)
		}
		return r, fmt.Errorf("service %q has no entrypoint %s; it has %s", r.Service(),
			strings.Join(missing, ", "), strings.Join(quoted, ", "))
	}
	kept := entrypoint.NewRegistry(r.Service())
	for _, e := range all {
		if slices.Contains(names, e.EntrypointName()) {
			kept.Add(e)
		}
	}
	return kept, nil
}
