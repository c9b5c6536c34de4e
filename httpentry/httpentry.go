// Package httpentry serves a service's HTTP routes: nameko's @http. Routes use
// net/http's pattern syntax and are served on HTTP.ADDRESS, by one server per
// process shared by its services.
//
//	func (g *Gateway) Register(r *entrypoint.Registry) {
//		httpentry.Handle(r, "GET /users/{id}", g.User, httpentry.Status(http.StatusNotFound, users.ErrNoSuchUser))
//		httpentry.HandleHTTP(r, "GET /files/", http.FileServerFS(files))
//	}
//
//	type UserIn struct {
//		ID      string `path:"id"`
//		Verbose bool   `query:"verbose"`
//	}
//
//	func (g *Gateway) User(ctx context.Context, in UserIn) (users.User, error) { ... }
//
// A request runs in a worker of the service's pool, inside the app's
// entrypoint.Interceptors (their Call's Spec is the *http.Request), with a span
// that follows OpenTelemetry's HTTP conventions and goes on through the RPC
// calls the handler makes. While the service is not started, or is stopping,
// its routes answer 503.
package httpentry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/hypha-go/hypha/entrypoint"
)

// expectedStatus is the status of an error declared with Expected.
const expectedStatus = http.StatusBadRequest

// Route is a registered HTTP route: the entrypoint Handle and HandleHTTP add
// to a service's registry.
type Route struct {
	pattern  string
	expected []expectation
	headers  bool
	typed    bool
	serve    func(ctx context.Context, w http.ResponseWriter, r *http.Request, x *exchange)
}

type expectation struct {
	err    error
	status int
}

// EntrypointName is the route's pattern, "GET /users/{id}": unique within a
// service, and across the services of a process.
func (rt *Route) EntrypointName() string { return rt.pattern }

// Describe describes the route: its pattern, and whether its handler is a
// typed one (Handle) or a plain http.Handler (HandleHTTP).
func (rt *Route) Describe() entrypoint.Description {
	return entrypoint.Description{Kind: entrypoint.KindHTTP, Name: rt.pattern,
		Detail: map[string]any{"pattern": rt.pattern, "typed": rt.typed}}
}

// status is the status a typed handler's err is answered with when the route
// declared it, matched with errors.Is (a relayed RemoteError counts when its
// exc_path is the declared error's).
func (rt *Route) status(err error) (int, bool) {
	for _, e := range rt.expected {
		if errors.Is(err, e.err) {
			return e.status, true
		}
	}
	return 0, false
}

// Option configures a route registered with Handle or HandleHTTP; it prints
// as the call that made it.
type Option interface {
	apply(*Route)
	String() string
}

type option struct {
	name string
	fn   func(*Route)
}

func (o option) apply(rt *Route) { o.fn(rt) }
func (o option) String() string  { return o.name }

// Expected declares errors that are part of a typed route's contract, local
// or relayed from an RPC call: they are answered with 400 Bad Request and
// their exc_type and message, and logged at info.
func Expected(errs ...error) Option {
	return option{"httpentry.Expected(" + errorList(errs) + ")", expect(expectedStatus, errs)}
}

// Status declares errors, as Expected does, answered with status (a 4xx).
func Status(status int, errs ...error) Option {
	name := fmt.Sprintf("httpentry.Status(%d", status)
	if len(errs) > 0 {
		name += ", " + errorList(errs)
	}
	return option{name + ")", expect(status, errs)}
}

// expect declares errs answered with status.
func expect(status int, errs []error) func(*Route) {
	return func(rt *Route) {
		for _, e := range errs {
			rt.expected = append(rt.expected, expectation{err: e, status: status})
		}
	}
}

// errorList quotes the messages of errs, comma-separated, for an option's String.
func errorList(errs []error) string {
	quoted := make([]string, len(errs))
	for i, err := range errs {
		quoted[i] = fmt.Sprintf("%q", fmt.Sprint(err))
	}
	return strings.Join(quoted, ", ")
}

// ContextHeaders lets the route's requests set context data with headers
// "X-Hypha-<Key>": X-Hypha-User-Id sets user_id, X-Hypha-Language language,
// X-Hypha-Auth-Token auth_token, X-Hypha-User-Agent user_agent, and any other
// key likewise (lower-cased, dashes as underscores). The data goes on with
// the RPC calls and events the handler makes. It is off unless given,
// because any HTTP client can send those headers: give it to routes behind a
// proxy that sets or strips them.
func ContextHeaders() Option {
	return option{"httpentry.ContextHeaders()", func(rt *Route) { rt.headers = true }}
}

// Handle registers fn as a typed route: In is filled from the request (see
// below), fn runs, and Out is written as JSON with status 200.
//
// In must be a struct. A field tagged `path:"name"` takes the path value of
// the pattern's {name}, one tagged `query:"name"` the query parameter name
// (all its values for a slice); both take strings, booleans, numbers,
// encoding.TextUnmarshaler and pointers and slices of those. The JSON body,
// when there is one, fills the other fields by their JSON names; unknown
// fields are refused. A request that does not fit is answered 400 with
// exc_type IncorrectSignature before fn runs.
//
// An error fn returns is answered as the route declared it (Expected,
// Status), with its exc_type; one wrapping transport.ErrInvalid (the
// request carried what cannot travel to the broker: a path value that makes
// a routing key over 255 bytes, say) with 400; any other error, a relayed
// Panic included, with 500 and a body that carries only an error id, under
// which the log has the detail. The error body is
// {"error": {"exc_type": ..., "value": ..., "error_id": ...}}.
//
// A path tag naming no wildcard of pattern, or an In that is not a struct,
// fails the registry.
func Handle[In, Out any](r *entrypoint.Registry, pattern string, fn func(context.Context, In) (Out, error), opts ...Option) {
	b, err := newBinder(reflect.TypeFor[In](), pattern)
	if err != nil {
		r.Fail(fmt.Errorf("service %q: httpentry.Handle(%q): %w", r.Service(), pattern, err))
		return
	}
	rt := &Route{pattern: pattern, typed: true}
	rt.serve = func(ctx context.Context, w http.ResponseWriter, req *http.Request, x *exchange) {
		var in In
		if err := b.bind(req, &in); err != nil {
			x.badRequest(ctx, w, err)
			return
		}
		var out Out
		err := x.intercept(ctx, req, func(ctx context.Context) error {
			var err error
			out, err = fn(ctx, in)
			return err
		})
		if err != nil {
			x.fail(ctx, w, err)
			return
		}
		body, err := json.Marshal(out)
		if err != nil {
			x.fail(ctx, w, fmt.Errorf("the result cannot be encoded as JSON: %w", err))
			return
		}
		writeJSON(w, http.StatusOK, body)
	}
	add(r, rt, opts)
}

// HandleHTTP registers h as a plain route: it writes the response itself.
// Expected and Status do not apply; a panic in h is answered 500 with an
// error id, when nothing was written yet.
func HandleHTTP(r *entrypoint.Registry, pattern string, h http.Handler, opts ...Option) {
	if h == nil {
		r.Fail(fmt.Errorf("service %q: httpentry.HandleHTTP(%q) needs a handler", r.Service(), pattern))
		return
	}
	rt := &Route{pattern: pattern}
	rt.serve = func(ctx context.Context, w http.ResponseWriter, req *http.Request, x *exchange) {
		_ = x.intercept(ctx, req, func(ctx context.Context) error {
			h.ServeHTTP(w, req.WithContext(ctx))
			return nil
		})
	}
	add(r, rt, opts)
}

func add(r *entrypoint.Registry, rt *Route, opts []Option) {
	if err := checkPattern(rt.pattern); err != nil {
		r.Fail(fmt.Errorf("service %q: HTTP route %q: %w", r.Service(), rt.pattern, err))
		return
	}
	for _, o := range opts {
		o.apply(rt)
	}
	r.Add(rt)
}

// checkPattern refuses what http.ServeMux would panic on.
func checkPattern(pattern string) (err error) {
	if strings.TrimSpace(pattern) == "" {
		return errors.New("empty pattern: write one as net/http does, \"GET /users/{id}\"")
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	http.NewServeMux().Handle(pattern, http.NotFoundHandler())
	return nil
}
