package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"go.uber.org/fx"
)

// endpoints serves the app's HTTP endpoints (/metrics, /healthz, /readyz):
// one listener per address, however many paths share it. The listeners open
// first on start, so that a taken address stops the start, and close last on
// stop, so that probes and scrapes see the app until it is gone.
type endpoints struct {
	log       *slog.Logger
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

func newEndpoints(lc fx.Lifecycle, log *slog.Logger) *endpoints {
	e := &endpoints{log: log}
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
		ep.ln = ln
		ep.server = &http.Server{Handler: ep.mux, ReadHeaderTimeout: 5 * time.Second}
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
