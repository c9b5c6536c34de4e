package hyphatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"go.uber.org/fx"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
)

// FakeProxy is an rpc.Caller that answers each method as told and records
// every call, for a service under test in place of its proxy to another
// (nameko's replace_dependencies). A method it was not told about fails with
// rpc.ErrMethodNotFound. It is safe for concurrent use.
type FakeProxy struct {
	service string

	mu      sync.Mutex
	answers map[string]func(context.Context, any) (any, error)
	calls   []Call
}

var _ rpc.Caller = (*FakeProxy)(nil)

// Call is one call a FakeProxy received.
type Call struct {
	Method string
	In     any              // the input as the caller passed it
	Data   contextdata.Data // the caller's context data
}

// Decode decodes the call's input into v through JSON, as the called
// service would receive it: a struct or map as keyword arguments, an
// rpc.Args as a list.
func (c Call) Decode(v any) error { return roundTrip(c.In, v) }

// NewFakeProxy returns a fake of the proxy to service, answering nothing yet.
func NewFakeProxy(service string) *FakeProxy {
	return &FakeProxy{service: service, answers: map[string]func(context.Context, any) (any, error){}}
}

// Answer makes method succeed with value, which the caller's Result decodes
// through JSON as it would a real reply. It returns f, to chain.
func (f *FakeProxy) Answer(method string, value any) *FakeProxy {
	return f.AnswerFunc(method, func(context.Context, any) (any, error) { return value, nil })
}

// Fail makes method fail with err, as it reaches the caller (a service's own
// error, an *rpc.RemoteError, rpc.ErrTimeout, ...). It returns f, to chain.
func (f *FakeProxy) Fail(method string, err error) *FakeProxy {
	return f.AnswerFunc(method, func(context.Context, any) (any, error) { return nil, err })
}

// AnswerFunc makes method answer with what fn returns for the call's context
// and input. fn may run concurrently with itself. It returns f, to chain.
func (f *FakeProxy) AnswerFunc(method string, fn func(ctx context.Context, in any) (any, error)) *FakeProxy {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[method] = fn
	return f
}

// Call records the call and decodes the method's answer into out, as
// rpc.Proxy.Call does.
func (f *FakeProxy) Call(ctx context.Context, method string, in, out any) error {
	return f.CallAsync(ctx, method, in).Result(out)
}

// CallAsync records the call and returns the method's answer as a Reply
// that is already done. Input a real proxy refuses (a plain slice, say) is
// refused the same way.
func (f *FakeProxy) CallAsync(ctx context.Context, method string, in any) *rpc.Reply {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Method: method, In: in, Data: contextdata.From(ctx)})
	answer := f.answers[method]
	f.mu.Unlock()
	if err := checkInput(in); err != nil {
		return rpc.ReplyError(fmt.Errorf("calling %s.%s: %w", f.service, method, err))
	}
	if answer == nil {
		return rpc.ReplyError(fmt.Errorf("hyphatest: fake %s has no answer for %q (tell it with Answer, Fail or AnswerFunc): %w",
			f.service, method, rpc.ErrMethodNotFound))
	}
	value, err := answer(ctx, in)
	if err != nil {
		return rpc.ReplyError(err)
	}
	return rpc.ReplyWith(value)
}

// checkInput refuses what a real proxy refuses: input that is neither nil,
// an rpc.Positional, nor JSON that is an object.
func checkInput(in any) error {
	switch in.(type) {
	case nil, rpc.Positional:
		return nil
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encoding arguments: %w", err)
	}
	if !bytes.HasPrefix(raw, []byte("{")) {
		return fmt.Errorf("arguments of type %T do not encode as a JSON object: pass keyword arguments as a struct or a map, and positional arguments with rpc.Args", in)
	}
	return nil
}

// Calls returns the calls received so far, oldest first.
func (f *FakeProxy) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// FakeDispatcher is an events.EventDispatcher that records the events
// dispatched through it instead of publishing them. Its zero value is ready
// to use. It is safe for concurrent use.
type FakeDispatcher struct {
	mu     sync.Mutex
	err    error
	events []Event
}

var _ events.EventDispatcher = (*FakeDispatcher)(nil)

// Event is one event dispatched through a FakeDispatcher.
type Event struct {
	Type    string
	Payload any              // as the dispatcher was given it
	Data    contextdata.Data // the dispatcher's context data
}

// Decode decodes the event's payload into v through JSON, as a handler
// would receive it.
func (e Event) Decode(v any) error { return roundTrip(e.Payload, v) }

// FailWith makes every later Dispatch fail with err (nil: succeed again)
// after recording the event. It returns d, to chain.
func (d *FakeDispatcher) FailWith(err error) *FakeDispatcher {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
	return d
}

// Dispatch records the event and returns the error FailWith set, or nil.
func (d *FakeDispatcher) Dispatch(ctx context.Context, eventType string, payload any) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, Event{Type: eventType, Payload: payload, Data: contextdata.From(ctx)})
	return d.err
}

// Events returns the events dispatched so far, oldest first.
func (d *FakeDispatcher) Events() []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Event(nil), d.events...)
}

func roundTrip(from, to any) error {
	raw, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, to)
}

// ReplaceProxy is an option of framework.Service that gives the service fake
// (a FakeProxy, or any rpc.Caller) in place of its proxy to target, declared
// as an rpc.Caller field tagged `name:"<target>"`. A service that declares
// that proxy as a *rpc.Proxy cannot be given a fake: it fails to build,
// saying so.
func ReplaceProxy(target string, fake rpc.Caller) fx.Option {
	tag := fmt.Sprintf("name:%q", target)
	return fx.Options(
		fx.Decorate(fx.Annotate(func(rpc.Caller) rpc.Caller { return fake }, fx.ParamTags(tag), fx.ResultTags(tag))),
		fx.Decorate(fx.Annotate(func(*rpc.Proxy) (*rpc.Proxy, error) {
			return nil, fmt.Errorf("hyphatest: ReplaceProxy(%q): the service takes a *rpc.Proxy; declare it as an rpc.Caller to replace it", target)
		}, fx.ParamTags(tag), fx.ResultTags(tag))),
	)
}

// ReplaceDispatcher is an option of framework.Service that gives the service
// fake (a FakeDispatcher, or any events.EventDispatcher) in place of its
// event dispatcher, taken as an events.EventDispatcher. A service that takes
// a *events.Dispatcher cannot be given a fake: it fails to build, saying so.
func ReplaceDispatcher(fake events.EventDispatcher) fx.Option {
	return fx.Options(
		fx.Decorate(func(events.EventDispatcher) events.EventDispatcher { return fake }),
		fx.Decorate(func(*events.Dispatcher) (*events.Dispatcher, error) {
			return nil, fmt.Errorf("hyphatest: ReplaceDispatcher: the service takes a *events.Dispatcher; take an events.EventDispatcher to replace it")
		}),
	)
}
