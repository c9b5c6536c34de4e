package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"go.uber.org/fx"
	"golang.org/x/net/netutil"

	"github.com/hypha-go/hypha/config"
)

// endpoints serves the app's HTTP endpoints (/metrics, /healthz, /readyz):
// one listener per address, however many paths share it. The listeners open
// first on start, so that a taken address stops the start, and close last on
// stop, so that probes and scrapes see the app until it is gone. Every
// listener is held to HTTP's bounds: timeouts, header size, connections.
type endpoints struct {
	log       *slog.Logger
	limits    config.HTTPSettings
	listeners []*endpoint // in the order first asked for
}

// endpoint is one address and what it serves.
type endpoint struct {
	address string // as configured; port 0 is resolved once listening
	key     string // the config key that set it, for errors
	mux     *http.ServeMux
	paths   []string
	ln      net.Listener
	server  *http.Server
}

func newEndpoints(lc fx.Lifecycle, log *slog.Logger, limits config.HTTPSettings) *endpoints {
	e := &endpoints{log: log, limits: limits}
	lc.Append(fx.Hook{OnStart: e.start, OnStop: e.stop})
	return e
}

// handle serves h at path on address, the value of config key; paths on one
// address share its listener. It must be called before the app starts.
func (e *endpoints) handle(key, address, path string, h http.Handler) {
	var ep *endpoint
	for _, l := range e.listeners {
		if l.address == address {
			ep = l
		}
	}
	if ep == nil {
		ep = &endpoint{address: address, key: key, mux: http.NewServeMux()}
		e.listeners = append(e.listeners, ep)
	}
	ep.mux.Handle(path, h)
	ep.paths = append(ep.paths, path)
}

// start opens every listener and serves it.
func (e *endpoints) start(ctx context.Context) error {
	for _, ep := range e.listeners {
		ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", ep.address)
		if err != nil {
			_ = e.stop(ctx)
			return fmt.Errorf("hypha: config %s %s: %w", ep.key, ep.address, err)
		}
		// Past MAX_CONNECTIONS a connection waits in the listen backlog
		// until one closes; idle ones close after IDLE_TIMEOUT.
		ln = netutil.LimitListener(ln, e.limits.MaxConnections)
		ep.ln = ln
		ep.server = e.server(ep.mux)
		go func(ep *endpoint) {
			if err := ep.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				e.log.Error("hypha: HTTP endpoint stopped", "address", ln.Addr().String(), "error", err)
			}
		}(ep)
		urls := make([]string, len(ep.paths))
		for i, p := range ep.paths {
			urls[i] = "http://" + ln.Addr().String() + p
		}
		e.log.Info("hypha: serving " + strings.Join(urls, " "))
	}
	return nil
}

// server serves h within HTTP's bounds. WRITE_TIMEOUT counts from the end of
// the request here; httpentry's routes count it from the response's first
// byte instead, so that a handler's own run is bounded by its RPC timeouts.
func (e *endpoints) server(h http.Handler) *http.Server {
	l := e.limits
	return &http.Server{Handler: h, ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout, MaxHeaderBytes: l.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(e.log.Handler(), slog.LevelDebug)}
}

// address is where the endpoint configured as address listens once started;
// "" when nothing serves it.
func (e *endpoints) address(address string) string {
	for _, ep := range e.listeners {
		if ep.address == address && ep.ln != nil {
			return ep.ln.Addr().String()
		}
	}
	return ""
}

// stop closes the listeners, letting requests being answered finish, bounded by ctx.
func (e *endpoints) stop(ctx context.Context) error {
	var errs []error
	for _, ep := range e.listeners {
		if ep.server != nil {
			errs = append(errs, ep.server.Shutdown(ctx))
		}
	}
	return errors.Join(errs...)
}
