package framework

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/hypha-go/hypha/transport/dial"
)

var (
	errStarting = errors.New("starting")
	errStopping = errors.New("stopping")
)

// health answers the probes: /healthz (alive) while the process serves at
// all, /readyz only while the app can take work: started, not stopping,
// connected to the broker with every consumer running, and every service's
// servers ready (those of kinds that can tell, entrypoint.Readier).
type health struct {
	broker   dial.Broker
	services *runtimes
	started  atomic.Bool
	stopping atomic.Bool
}

// newHealth serves the probes on HEALTH.ADDRESS, or with /metrics when that
// is empty, or nowhere when both are.
func newHealth(cfg Config, e *endpoints, c *connection, r *runtimes) *health {
	h := &health{broker: c.broker, services: r}
	key, address := healthAddress(cfg)
	if address != "" {
		e.handle(key, address, "/healthz", http.HandlerFunc(h.live))
		e.handle(key, address, "/readyz", http.HandlerFunc(h.readyz))
	}
	return h
}

// healthAddress is where the probes are served and the key that says so.
func healthAddress(cfg Config) (key, address string) {
	if cfg.Health.Address != "" {
		return "HEALTH.ADDRESS", cfg.Health.Address
	}
	return "METRICS.ADDRESS", cfg.Metrics.Address
}

// ready is nil when the app can take work, or says why not.
func (h *health) ready() error {
	switch {
	case h.stopping.Load():
		return errStopping
	case !h.started.Load():
		return errStarting
	}
	if err := h.broker.Ready(); err != nil {
		return err
	}
	return h.services.ready()
}

func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok\n")
}

func (h *health) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := h.ready(); err != nil {
		reason := strings.TrimPrefix(err.Error(), "hypha: ")
		http.Error(w, reason, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ready\n")
}
