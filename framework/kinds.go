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

// provideKinds provides the app's kinds, and the HTTP router the built-in
// HTTP kind mounts routes on.
func provideKinds(cfg Config, ac *appConfig) fx.Option {
	return fx.Options(
		fx.Provide(func(e *endpoints) *httpentry.Mux { return newHTTP(cfg, e) }),
		fx.Provide(func(m *httpentry.Mux) *kinds { return newKinds(ac, m) }),
	)
}

// newKinds lists the built-in kinds, then the app's. Event handlers start
// before the RPC server, so that a service answering calls has its event
// queues bound; HTTP routes and timers start last, since their requests and
// ticks may call the service.
func newKinds(ac *appConfig, mux *httpentry.Mux) *kinds {
	builtIn := []entrypoint.Plugin{
		events.Plugin(),
		rpc.Plugin(),
		httpentry.Plugin(mux),
		timer.Plugin(),
	}
	return &kinds{plugins: append(builtIn, ac.plugins...)}
}

// newHTTP is the process's one HTTP router, which every service mounts its
// routes on, served on HTTP.ADDRESS when set; /healthz, /readyz and /metrics
// share its listener when their address is the same.
func newHTTP(cfg Config, e *endpoints) *httpentry.Mux {
	m := httpentry.NewMux()
	if cfg.HTTP.Address != "" {
		e.handle("HTTP.ADDRESS", cfg.HTTP.Address, "/", m)
	}
	return m
}
