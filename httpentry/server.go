package httpentry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/ctxwire"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
)

// headerPrefix starts the headers that set context data on a route with
// ContextHeaders: "X-Hypha-User-Id" sets user_id.
const headerPrefix = "X-Hypha-"

// serverConfig says how a service serves its HTTP routes.
type serverConfig struct {
	Service string
	// Pool runs the requests; the service's other entrypoints share it.
	Pool               *worker.Pool
	ParentCallsTracked int
	Logger             *slog.Logger
	// Interceptors wrap every request a route serves, the first outermost.
	Interceptors []entrypoint.Interceptor
	// Instrument, when set, wraps each route's handler, given the route's
	// pattern: tracing and metrics (otelhttp).
	Instrument func(pattern string, h http.Handler) http.Handler
	// MaxBodySize bounds a request's body, read whole before the request
	// takes a worker; 8 MiB (HTTP.MAX_BODY_SIZE's default) when zero.
	MaxBodySize int64
	// WriteTimeout bounds writing a response, from its first byte; 30 s
	// (HTTP.WRITE_TIMEOUT's default) when zero.
	WriteTimeout time.Duration
}

// Defaults of serverConfig, those of config's HTTP keys.
const (
	defaultMaxBodySize  = 8 << 20          // HTTP.MAX_BODY_SIZE
	defaultWriteTimeout = 30 * time.Second // HTTP.WRITE_TIMEOUT
)

// server serves the HTTP routes registered in a service's registry, once
// mounted on the process's router.
type server struct {
	cfg     serverConfig
	routes  []*Route
	log     *slog.Logger
	serving atomic.Bool
}

// newServer returns a server for the routes registered in r.
func newServer(r *entrypoint.Registry, cfg serverConfig) *server {
	if cfg.Pool == nil {
		cfg.Pool = worker.NewPool(10)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = defaultMaxBodySize
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = defaultWriteTimeout
	}
	return &server{cfg: cfg, routes: entrypoint.Of[*Route](r), log: cfg.Logger}
}

// Routes are the patterns the server serves, in registration order.
func (s *server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.pattern
	}
	return out
}

// Mount adds the server's routes to m; a pattern another service has, or
// one that conflicts with it, is an error naming both.
func (s *server) Mount(m *router) error {
	var errs []error
	for _, rt := range s.routes {
		var h http.Handler = s.handler(rt)
		if s.cfg.Instrument != nil {
			h = s.cfg.Instrument(rt.pattern, h)
		}
		errs = append(errs, m.handle(s.cfg.Service, rt.pattern, h))
	}
	return errors.Join(errs...)
}

// Start starts answering requests; until then the routes answer 503.
func (s *server) Start() { s.serving.Store(true) }

// Drain stops taking requests: from now on the routes answer 503, while
// requests already running go on.
func (s *server) Drain() { s.serving.Store(false) }

// handler runs each request to rt in a worker of the pool, bounded by the
// request's context and cancelled with the pool's (ErrStopping). The body is
// read whole first, within MaxBodySize and the server's read timeout, so that
// a client sending slowly holds its connection, never a worker.
func (s *server) handler(rt *Route) http.Handler {
	label := s.cfg.Service + " " + rt.pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.serving.Load() {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, errorBody{ExcType: "ServiceUnavailable",
				Value: fmt.Sprintf("service %q is not serving now", s.cfg.Service)})
			return
		}
		if !s.readBody(w, r) {
			return
		}
		x := &exchange{s: s, rt: rt}
		ctx, err := x.incoming(r)
		if err != nil {
			x.badRequest(r.Context(), w, err)
			return
		}
		done := make(chan struct{})
		err = s.cfg.Pool.GoSized(ctx, label, bodySize(r), func(poolCtx context.Context) {
			defer close(done)
			ctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			stop := context.AfterFunc(poolCtx, func() { cancel(context.Cause(poolCtx)) })
			defer stop()
			x.serve(ctx, w, r)
		})
		if err != nil {
			return // the client went away while every worker was busy
		}
		<-done
		if x.aborted {
			panic(http.ErrAbortHandler) // on net/http's goroutine, which aborts the response
		}
	})
}

// bodySize is what a request takes from the process's budget: its body's
// size, read whole by then (see readBody).
func bodySize(r *http.Request) int {
	return int(max(r.ContentLength, 0))
}

// readBody replaces r's body with its bytes, read whole; false when it
// could not be read or is too large, and the response is written.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodySize+1))
	_ = r.Body.Close()
	switch {
	case err != nil:
		s.log.DebugContext(r.Context(), "hypha: HTTP request body not read", "error", err)
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, errorBody{ExcType: "RequestTimeout",
			Value: "the request body could not be read in time (HTTP.READ_TIMEOUT): " + err.Error()})
		return false
	case int64(len(body)) > s.cfg.MaxBodySize:
		// The rest is not read: the connection closes after the answer.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, errorBody{ExcType: "RequestTooLarge",
			Value: fmt.Sprintf("the request body is over %d bytes (HTTP.MAX_BODY_SIZE): send less", s.cfg.MaxBodySize)})
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	return true
}

// exchange is one request to one route.
type exchange struct {
	s  *server
	rt *Route

	mu      sync.Mutex
	wrote   bool // the response has begun
	aborted bool // the handler panicked with http.ErrAbortHandler
}

// incoming is the request's context with its context data: a call id of
// its own and, with ContextHeaders, what X-Hypha-* headers set.
func (x *exchange) incoming(r *http.Request) (context.Context, error) {
	headers := map[string]any{}
	if x.rt.headers {
		for k, v := range r.Header {
			key, ok := strings.CutPrefix(k, headerPrefix)
			if !ok || len(v) == 0 {
				continue
			}
			key = strings.ReplaceAll(strings.ToLower(key), "-", "_")
			if key == contextdata.KeyCallIDStack {
				continue
			}
			headers[ctxwire.Prefix+key] = v[0]
		}
		if err := ctxwire.Check(headers); err != nil {
			return nil, fmt.Errorf("%s headers: %w", headerPrefix, err)
		}
	}
	id := fmt.Sprintf("%s.%s.%s", x.s.cfg.Service, routeID(x.rt.pattern), uuid.NewString())
	return contextdata.Incoming(r.Context(), headers, id, x.s.cfg.ParentCallsTracked+1), nil
}

// routeID is a pattern as a call id's part: "GET /users/{id}" becomes "GET_/users/{id}".
func routeID(pattern string) string { return strings.Join(strings.Fields(pattern), "_") }

// serve runs the route, recovering a panic as a 500.
func (x *exchange) serve(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	w = &trackingWriter{ResponseWriter: w, x: x}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { // net/http's way to abort a response: not a failure
				x.aborted = true
				return
			}
			x.s.log.ErrorContext(ctx, "hypha: HTTP handler panicked", "route", x.rt.pattern, "panic", fmt.Sprint(p),
				"stack", string(debug.Stack()))
			x.fail(ctx, w, &worker.PanicError{Value: p})
		}
	}()
	x.rt.serve(ctx, w, r, x)
}

// trackingWriter notes that a handler has begun its response, so that its
// panic is answered 500 only when it has not, and gives writing the response
// WriteTimeout from its first byte: the server's own write timeout counts
// from the request, and would cut off a handler that waited on slow calls.
type trackingWriter struct {
	http.ResponseWriter
	x       *exchange
	started bool
}

func (t *trackingWriter) begun() {
	if !t.started {
		t.started = true
		_ = http.NewResponseController(t.ResponseWriter).SetWriteDeadline(time.Now().Add(t.x.s.cfg.WriteTimeout))
	}
	t.x.mu.Lock()
	t.x.wrote = true
	t.x.mu.Unlock()
}

func (t *trackingWriter) WriteHeader(status int) {
	t.begun()
	t.ResponseWriter.WriteHeader(status)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.begun()
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer (to flush, say).
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// intercept runs next inside the app's interceptors, for the request r.
func (x *exchange) intercept(ctx context.Context, r *http.Request, next entrypoint.Next) error {
	call := &entrypoint.Call{Kind: entrypoint.KindHTTP, Service: x.s.cfg.Service, Name: x.rt.pattern, Spec: r,
		Expected: func(err error) bool { _, ok := x.rt.status(err); return ok }}
	return entrypoint.Intercept(x.s.cfg.Interceptors, call, next)(ctx)
}

// badRequest answers a request that does not fit the route: 400,
// IncorrectSignature; a body that is not JSON 415, UnsupportedMediaType.
func (x *exchange) badRequest(ctx context.Context, w http.ResponseWriter, err error) {
	x.s.log.InfoContext(ctx, "hypha: HTTP request refused", "route", x.rt.pattern, "error", err)
	if errors.Is(err, errMediaType) {
		x.write(w, http.StatusUnsupportedMediaType, errorBody{ExcType: "UnsupportedMediaType", Value: err.Error()})
		return
	}
	x.write(w, http.StatusBadRequest, errorBody{ExcType: "IncorrectSignature", Value: err.Error()})
}

// unavailable is the status and body of a call the handler made that found
// no service to answer (503) or no answer in time (504), or false. The body
// names neither the service nor the method: those are the route's inside.
func unavailable(err error) (int, errorBody, bool) {
	switch {
	case errors.Is(err, rpc.ErrServiceNotFound):
		return http.StatusServiceUnavailable, errorBody{ExcType: "ServiceUnavailable",
			Value: "a service this route needs is not running; try again later"}, true
	case errors.Is(err, rpc.ErrTimeout):
		return http.StatusGatewayTimeout, errorBody{ExcType: "Timeout",
			Value: "a service this route needs did not answer in time"}, true
	}
	return 0, errorBody{}, false
}

// fail answers a typed handler's error: as the route declared it, or 500
// with an opaque error id under which the log has the detail.
func (x *exchange) fail(ctx context.Context, w http.ResponseWriter, err error) {
	if status, ok := x.rt.status(err); ok {
		x.s.log.InfoContext(ctx, "hypha: HTTP request ended with an expected error", "route", x.rt.pattern, "error", err)
		x.write(w, status, errorBody{ExcType: excType(err), Value: message(err)})
		return
	}
	if errors.Is(err, transport.ErrInvalid) {
		// The request carried what cannot travel to the broker (a path
		// segment that makes a routing key over 255 bytes, a header name
		// over 255): nothing was sent, and sending it again would fail alike.
		x.s.log.InfoContext(ctx, "hypha: HTTP request refused: it cannot be sent on", "route", x.rt.pattern, "error", err)
		x.write(w, http.StatusBadRequest, errorBody{ExcType: excType(err), Value: message(err)})
		return
	}
	if status, body, ok := unavailable(err); ok {
		x.s.log.WarnContext(ctx, "hypha: HTTP request failed on a call", "route", x.rt.pattern, "error", err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		x.write(w, status, body)
		return
	}
	id := uuid.NewString()
	level := slog.LevelError
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		level = slog.LevelWarn // the client went away, or the stop's grace period ended
	}
	x.s.log.Log(ctx, level, "hypha: HTTP request failed", "route", x.rt.pattern, "error", err, "error_id", id)
	x.write(w, http.StatusInternalServerError, errorBody{ExcType: "InternalError",
		Value: "internal error; reference " + id, ErrorID: id})
}

// write writes an error response unless the response has begun.
func (x *exchange) write(w http.ResponseWriter, status int, body errorBody) {
	x.mu.Lock()
	begun := x.wrote
	x.wrote = true
	x.mu.Unlock()
	if !begun {
		writeError(w, status, body)
	}
}
