package framework

import (
	"go.uber.org/fx"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/timer"
)

// Plugins adds entrypoint kinds to the app's services, after the built-in
// ones (RPC methods, event handlers, HTTP routes and timers), in the order
// given: each service's entrypoints of a plugin's kind are served by it,
// started after the built-in kinds' and drained and closed before them.
func Plugins(p ...entrypoint.Plugin) Option {
	return optionFunc(func(c *appConfig) { c.plugins = append(c.plugins, p...) })
}

// kinds are the app's entrypoint plugins, in the order a service's servers
// start: the reverse is the order they drain and close in.
type kinds struct{ plugins []entrypoint.Plugin }

// provideKinds provides the app's kinds; the built-in HTTP kind's router is
// served on HTTP.ADDRESS.
func provideKinds(cfg Config, ac *appConfig) fx.Option {
	return fx.Options(
		fx.Provide(func(e *endpoints) httpKind { return newHTTP(cfg, e) }),
		fx.Provide(func(h httpKind) *kinds { return newKinds(ac, h) }),
	)
}

// newKinds lists the built-in kinds, then the app's. Event handlers start
// before the RPC server, so that a service answering calls has its event
// queues bound; HTTP routes and timers start last, since their requests and
// ticks may call the service.
func newKinds(ac *appConfig, h httpKind) *kinds {
	builtIn := []entrypoint.Plugin{
		events.Plugin(),
		rpc.Plugin(),
		h.plugin,
		timer.Plugin(),
	}
	return &kinds{plugins: append(builtIn, ac.plugins...)}
}

// httpKind is the built-in HTTP kind: one per process, whose router every
// service adds its routes to.
type httpKind struct{ plugin entrypoint.Plugin }

// newHTTP builds the HTTP kind and serves its router on HTTP.ADDRESS when
// set; /healthz, /readyz and /metrics share its listener when their address
// is the same.
func newHTTP(cfg Config, e *endpoints) httpKind {
	p, router := httpentry.Plugin()
	if cfg.HTTP.Address != "" {
		e.handle("HTTP.ADDRESS", cfg.HTTP.Address, "/", router)
	}
	return httpKind{plugin: p}
}
