package hyphatest

import (
	"context"
	"sync"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/rpc"
)

// Hook returns a function that calls service's RPC method with in and decodes
// its result into out (nameko's entrypoint_hook). The call goes through the
// broker as any caller's would, so the method's argument binding, expected
// errors, interceptors and context data are those of production: the
// handler's context carries ctx's context data and deadline. An error the
// method returns arrives as a *rpc.RemoteError, which errors.Is matches
// against the service's own error values. To run an event handler, dispatch
// its event with App.Dispatch and wait for it with a Waiter.
func Hook(t TB, app *App, service, method string) func(ctx context.Context, in, out any) error {
	t.Helper()
	proxy := app.Proxy(service)
	return func(ctx context.Context, in, out any) error {
		return proxy.Call(ctx, method, in, out)
	}
}

// EntrypointWaiter waits for one run of an entrypoint; see Waiter.
type EntrypointWaiter struct {
	t    TB
	name string
	ran  chan run
}

// run is how one entrypoint run ended.
type run struct {
	result any
	err    error
}

// Waiter starts watching service's entrypoint (an RPC method or an event
// handler, by the name it was registered with) for its next run, from now
// on (nameko's entrypoint_waiter). Make it before what triggers the run.
func Waiter(t TB, app *App, service, entrypoint string) *EntrypointWaiter {
	t.Helper()
	w := &EntrypointWaiter{t: t, name: service + "." + entrypoint, ran: make(chan run, 1)}
	app.hub.add(w)
	return w
}

// Wait waits up to timeout for the entrypoint to finish a run and returns
// what it returned: an RPC method's result (the Go value, before encoding)
// and error, or nil and an event handler's error. When it has not finished
// in time the test fails: "mailer.send_confirmation did not run within 2s".
// Only the first run after Waiter is seen.
func (w *EntrypointWaiter) Wait(timeout time.Duration) (any, error) {
	w.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-w.ran:
		w.ran <- r // Wait again sees the same run
		return r.result, r.err
	case <-timer.C:
		w.t.Fatalf("%s did not run within %s", w.name, timeout)
		return nil, nil
	}
}

// hub tells the waiters of an app when an entrypoint has run; its
// interceptor wraps every RPC method and event handler of the app.
type hub struct {
	mu      sync.Mutex
	waiting []*EntrypointWaiter
}

func (h *hub) add(w *EntrypointWaiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.waiting = append(h.waiting, w)
}

// ran hands a run of service.entrypoint to the waiters watching it, once each.
func (h *hub) ran(service, entrypoint string, r run) {
	name := service + "." + entrypoint
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.waiting[:0]
	for _, w := range h.waiting {
		if w.name == name {
			w.ran <- r
		} else {
			kept = append(kept, w)
		}
	}
	h.waiting = kept
}

// intercept hands every run of an RPC method or event handler to ran, with
// the method's result.
func (h *hub) intercept(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
	err := next(ctx)
	if call.Client || (call.Kind != entrypoint.KindRPC && call.Kind != entrypoint.KindEvent) {
		return err
	}
	var result any
	if rc, ok := call.Spec.(*rpc.CallInfo); ok {
		result = rc.Result
	}
	h.ran(call.Service, call.Name, run{result: result, err: err})
	return err
}
