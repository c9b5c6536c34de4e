package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
)

// Caller is what a service needs to call another: the methods of *Proxy that
// make calls. A service that declares its proxy as a Caller field (tagged
// `name:"<service>"` in its fx.In struct, as a *Proxy would be) can be given a
// fake in unit tests. Implementations are safe for concurrent use.
type Caller interface {
	// Call calls method with in and decodes the result into out, as
	// Proxy.Call does.
	Call(ctx context.Context, method string, in, out any) error
	// CallAsync sends the call and returns at once, as Proxy.CallAsync does.
	CallAsync(ctx context.Context, method string, in any) *Reply
}

var _ Caller = (*Proxy)(nil)

// Proxy calls the methods of one service. A service gets its proxies injected
// (declared as `name:"<service>"` fields of its fx.In struct); other programs
// take them from a Client. It is safe for concurrent use.
type Proxy struct {
	client     *Client
	service    string
	idempotent bool
}

// Idempotent returns a copy of p whose calls are all safe to run twice: a
// request whose fate a lost connection left unknown is sent again rather than
// waited on, even on a client with Config.NoResend set (every client sends
// such a request again by default). Only the caller can know this (the callee
// may be a Python service), and it holds for the calls made through the copy
// alone: the calls those lead to, in interceptors or in other services, are
// not marked. Interceptors see it as CallInfo.Idempotent.
func (p *Proxy) Idempotent() *Proxy {
	q := *p
	q.idempotent = true
	return &q
}

// Service is the name of the service the proxy calls.
func (p *Proxy) Service() string { return p.service }

// Call calls method with in and decodes the result into out (a pointer, or nil
// to drop it). in is sent as keyword arguments when it encodes as a JSON object
// (a struct or a map), as positional arguments when it is a Positional
// (Args(1, 2)), and as no arguments when nil; anything else, a plain slice
// included, is refused before it is sent. It returns a *RemoteError for an
// error the service sent, ErrServiceNotFound when no instance has a queue,
// ErrTimeout when the deadline passes first, and ErrClosed after Close.
func (p *Proxy) Call(ctx context.Context, method string, in, out any) error {
	r := &Reply{done: make(chan struct{})}
	body, err := p.encode(method, in)
	if err != nil {
		r.finish(nil, err)
	} else {
		r.finish(p.invoke(ctx, method, body)) // in this goroutine: no other is needed to wait
	}
	return r.Result(out)
}

// CallAsync sends the call and returns at once; the Reply's Result waits for
// the outcome. Start several to call in parallel. in is encoded before
// CallAsync returns, so the caller may change it afterwards.
func (p *Proxy) CallAsync(ctx context.Context, method string, in any) *Reply {
	r := &Reply{done: make(chan struct{})}
	body, err := p.encode(method, in)
	if err != nil {
		r.finish(nil, err)
		return r
	}
	go func() { r.finish(p.invoke(ctx, method, body)) }()
	return r
}

func (p *Proxy) encode(method string, in any) ([]byte, error) {
	body, err := encodeArgs(in)
	if err != nil {
		return nil, fmt.Errorf("calling %s.%s: %w", p.service, method, err)
	}
	return body, nil
}

// invoke makes the call; a panicking client interceptor becomes its error.
func (p *Proxy) invoke(ctx context.Context, method string, body []byte) (res json.RawMessage, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, fmt.Errorf("calling %s.%s: panic: %v", p.service, method, v)
		}
	}()
	return p.client.call(ctx, p.service, method, body, p.idempotent)
}

// Call calls method on p (a *Proxy or any other Caller) and returns its
// result as an Out.
func Call[Out any](ctx context.Context, p Caller, method string, in any) (Out, error) {
	var out Out
	err := p.Call(ctx, method, in, &out)
	return out, err
}

// Reply is the outcome of a call made with CallAsync.
type Reply struct {
	done   chan struct{}
	result json.RawMessage
	err    error
}

// ReplyWith returns a Reply that is done with value as its result, for fakes
// and unit tests: Result decodes value's JSON encoding into its argument, as
// it would decode a service's reply. A value that does not encode as JSON
// makes a Reply whose Result returns that error.
func ReplyWith(value any) *Reply {
	r := &Reply{done: make(chan struct{})}
	body, err := json.Marshal(value)
	if err != nil {
		err = fmt.Errorf("hypha: encoding reply value %T: %w", value, err)
	}
	r.finish(body, err)
	return r
}

// ReplyError returns a Reply that is done with err as its outcome, for fakes
// and unit tests: Result returns err.
func ReplyError(err error) *Reply {
	r := &Reply{done: make(chan struct{})}
	r.finish(nil, err)
	return r
}

func (r *Reply) finish(result json.RawMessage, err error) {
	r.result, r.err = result, err
	close(r.done)
}

// Done is closed when the outcome is known.
func (r *Reply) Done() <-chan struct{} { return r.done }

// Result waits for the outcome and decodes the result into out (a pointer, or
// nil to drop it). It may be called again, from any goroutine, with the same
// outcome each time.
func (r *Reply) Result(out any) error {
	<-r.done
	if r.err != nil {
		return r.err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(r.result, out); err != nil {
		return fmt.Errorf("hypha: decoding result into %T: %w", out, err)
	}
	return nil
}

// Positional holds a call's positional arguments, made with Args. Only a
// Positional is sent as positional arguments: a slice passed as a call's
// input is refused, so that a list meant as one argument is not spread.
type Positional []any

// Args are positional arguments: Args(1, 2) is nameko's calc.add(1, 2).
func Args(values ...any) Positional {
	if values == nil {
		return Positional{}
	}
	return values
}

// encodeArgs builds the request body from a call's input.
func encodeArgs(in any) ([]byte, error) {
	req := requestBody{Args: []json.RawMessage{}, Kwargs: map[string]json.RawMessage{}}
	switch in := in.(type) {
	case nil:
		return json.Marshal(req)
	case Positional:
		for i, v := range in {
			raw, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("encoding positional argument %d: %w", i, err)
			}
			req.Args = append(req.Args, raw)
		}
		return json.Marshal(req)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encoding arguments: %w", err)
	}
	if json.Unmarshal(raw, &req.Kwargs) != nil || req.Kwargs == nil {
		return nil, fmt.Errorf("arguments of type %s do not encode as a JSON object: pass keyword arguments as a struct or a map, and positional arguments with rpc.Args", reflect.TypeOf(in))
	}
	return json.Marshal(req)
}
