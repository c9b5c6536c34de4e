package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// maxRawRequeues bounds how often a raw method can put one request back on
// its queue with RawReply.Reject(true): the request that would be requeued
// once more gets an error reply (exc_type "RequeueLimitError") instead.
const maxRawRequeues = 5

// requeuesHeader counts how often a raw request was put back on its queue.
const requeuesHeader = "x-hypha-requeues"

// ErrAnswered is returned by a RawReply method called after the request was
// answered (Reply, Error) or rejected (Reject).
var ErrAnswered = errors.New("hypha: raw call already answered")

// The exc_type and exc_path of the error a request requeued maxRawRequeues
// times gets.
const (
	requeueLimitExcType = "RequeueLimitError"
	requeueLimitExcPath = "github.com/hypha-go/hypha/rpc." + requeueLimitExcType
)

// rawFunc is a raw RPC method, as HandleRaw takes it.
type rawFunc = func(ctx context.Context, req *RawRequest, reply *RawReply) error

// rawMethod is a registered raw RPC method: the entrypoint HandleRaw adds to
// a service's registry.
type rawMethod struct {
	name   string
	method *rpcMethod // its name, Doc and Expected
	fn     rawFunc
}

// EntrypointName is the method's name on the wire: "<service>.<name>" is its routing key.
func (m *rawMethod) EntrypointName() string { return m.name }

// Describe describes the method: raw, and the errors it declared with Expected.
func (m *rawMethod) Describe() entrypoint.Description {
	return entrypoint.Description{Kind: entrypoint.KindRPC, Name: m.name, Doc: m.method.doc,
		Detail: map[string]any{"raw": true, "errors": describeErrors(m.method.expected)}}
}

// RawRequest is a request to a raw method, as it came.
type RawRequest struct {
	Body            []byte
	ContentType     string
	ContentEncoding string
	// Headers are the request's AMQP headers, context data (nameko.*) and
	// trace context included.
	Headers       map[string]any
	CorrelationID string
	ReplyTo       string // "" when the caller wants no reply
	MessageID     string
	Redelivered   bool
	// Requeues is how often the request was put back with Reject(true).
	Requeues int
	// Deadline is when the caller stops waiting; zero when it sent none.
	Deadline time.Time
}

// HandleRaw registers fn as the RPC method name of the service that owns r,
// taking requests as they come, with no decoding: for bodies that are not
// JSON, replies that are not JSON, acking before the work, or a retry policy
// of one's own. Of opts, Doc and Expected apply.
//
// It shares the service's queue, worker pool, interceptors, tracing and
// metrics with the methods registered by Handle; the caller's deadline and
// context data are in fn's ctx. The request is acked when fn answers, or
// earlier with RawReply.Ack; a request acked early is not cancelled when the
// connection drops, since it will not come again (a stop's grace period
// still ends it).
//
// fn reads the request as it came and answers through reply. When it returns
// without having answered, its error is the reply, as a typed method's is,
// or a null result when it returns nil.
func HandleRaw(r *entrypoint.Registry, name string, fn func(ctx context.Context, req *RawRequest, reply *RawReply) error, opts ...Option) {
	if name == "" || fn == nil {
		r.Fail(fmt.Errorf("service %q: rpc.HandleRaw needs a method name and a function", r.Service()))
		return
	}
	m := &rpcMethod{name: name}
	for _, o := range opts {
		o.apply(m)
	}
	r.Add(&rawMethod{name: name, method: m, fn: fn})
}

// RawReply answers one raw request. Its methods are safe for concurrent
// use; after Reply, Error or Reject the others return ErrAnswered.
type RawReply struct {
	s    *server
	d    transport.Delivery
	call *CallInfo

	mu       sync.Mutex
	answered bool
	acked    bool
}

// Reply sends body to the caller, then acks the request unless it was acked
// already. A JSON content type ("application/json") sends body as the call's
// result in nameko's reply, {"result": <body>, "error": null}, so that any
// caller reads it; body must then be valid JSON. Any other content type
// sends body as it is, with that content type, for callers that read raw
// replies. Without a reply_to the reply is not sent.
func (r *RawReply) Reply(body []byte, contentType string) error {
	if ct := strings.TrimSpace(strings.Split(contentType, ";")[0]); ct == contentTypeJSON {
		if !json.Valid(body) {
			return fmt.Errorf("hypha: rpc %s: Reply with %s: the body is not valid JSON", r.call.Method, contentTypeJSON)
		}
		wrapped, err := json.Marshal(replyBody{Result: body})
		if err != nil {
			return err
		}
		body, contentType = wrapped, contentTypeJSON
	}
	return r.send(body, contentType, r.call.ReplyHeaders)
}

// Error sends the caller an error with exc_type excType and message msg,
// as a nameko service does, then acks the request unless it was acked. Its
// exc_path is empty, so that a Go caller's errors.Is matches it to any error
// of that exc_type. To send an error of rpc.NewError, with its exc_path,
// return it from the method instead.
func (r *RawReply) Error(excType, msg string) error {
	body, err := encodeReply(nil, &RemoteError{ExcType: excType, ExcArgs: []any{msg}, Value: msg})
	if err != nil {
		return err
	}
	return r.send(body, contentTypeJSON, nil)
}

// Ack acks the request now, before fn answers: the broker will not deliver
// it again, whatever happens to this instance, and a dropped connection no
// longer cancels fn's ctx. Reply and Error still answer afterwards.
func (r *RawReply) Ack() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.acked {
		return entrypoint.ErrSettled
	}
	if r.answered {
		return ErrAnswered
	}
	r.acked = true
	return r.d.Ack()
}

// Reject gives the request up without answering it. With requeue it goes
// back to the service's queue, to this instance or another, counted in
// its x-hypha-requeues header (RawRequest.Requeues); the 6th time it gets
// an error reply (exc_type "RequeueLimitError") instead. Without requeue it
// is dropped: a caller waiting for it times out. A request acked already
// cannot be rejected.
func (r *RawReply) Reject(requeue bool) error {
	r.mu.Lock()
	if r.answered {
		r.mu.Unlock()
		return ErrAnswered
	}
	if r.acked {
		r.mu.Unlock()
		return fmt.Errorf("hypha: rpc %s: Reject after Ack: the request was acked already", r.call.Method)
	}
	if requeue && requeuesOf(r.d.Headers) >= maxRawRequeues {
		r.mu.Unlock()
		msg := fmt.Sprintf("request requeued %d times, the most a raw method may requeue one; giving up", maxRawRequeues)
		r.s.log.Warn("hypha: raw call requeued too often; answering with an error", "method", r.call.Method,
			"correlation_id", r.d.CorrelationID)
		body, _ := encodeReply(nil, &RemoteError{ExcType: requeueLimitExcType, ExcPath: requeueLimitExcPath,
			ExcArgs: []any{msg}, Value: msg})
		return r.send(body, contentTypeJSON, nil)
	}
	r.answered, r.acked = true, true
	r.mu.Unlock()
	if !requeue {
		return r.d.Nack(false)
	}
	return r.s.requeueRaw(r.d, r.call)
}

// send publishes a reply, once, and acks the request unless it was acked.
func (r *RawReply) send(body []byte, contentType string, headers map[string]any) error {
	r.mu.Lock()
	if r.answered {
		r.mu.Unlock()
		return ErrAnswered
	}
	r.answered = true
	acked := r.acked
	r.acked = true
	r.mu.Unlock()
	var err error
	if r.d.ReplyTo != "" {
		err = r.s.reply(r.d, body, contentType, headers, r.call.Deadline)
		r.s.replyFailed(r.call, r.d.ReplyTo, err)
	}
	if !acked {
		if ackErr := r.d.Ack(); ackErr != nil {
			r.s.log.Warn("hypha: ack failed", "method", r.call.Method, "error", ackErr)
		}
	}
	return err
}

// done reports whether the request was answered or rejected, and whether it
// was acked.
func (r *RawReply) done() (answered, acked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered, r.acked
}

// serveRaw runs a raw method on a request: fn inside the interceptors, then
// the reply fn did not send itself.
func (s *server) serveRaw(ctx context.Context, d transport.Delivery, call *CallInfo, m *rawMethod) {
	ctx, cancel := s.workerContext(ctx, d, call)
	defer cancel()
	ctx, st := withCallState(ctx)
	call.method = m.method
	req := &RawRequest{
		Body: d.Body, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding, Headers: d.Headers,
		CorrelationID: d.CorrelationID, ReplyTo: d.ReplyTo, MessageID: d.MessageID, Redelivered: d.Redelivered,
		Requeues: requeuesOf(d.Headers), Deadline: call.Deadline,
	}
	reply := &RawReply{s: s, d: d, call: call}
	err := entrypoint.Intercept(s.cfg.Interceptors, call.serverCall(), func(ctx context.Context) error {
		var err error
		call.Result, err = recovered(st, func() (any, error) { return nil, m.fn(ctx, req, reply) })
		return err
	})(ctx)
	res := call.Result
	answered, acked := reply.done()
	err = s.report(ctx, d, call, st, err, !acked)
	switch {
	case answered:
	case isAbandoned(err):
		_ = d.Nack(true) // stopping or lost: the request runs again, and that run answers
	default:
		body, encErr := encodeReply(res, err)
		if encErr != nil {
			body, _ = encodeReply(nil, unserializable(res, encErr))
		}
		_ = reply.send(body, contentTypeJSON, call.ReplyHeaders)
	}
}

// requeueRaw puts a raw request back on the service's queue with its
// requeue count raised, then acks this delivery; a request whose caller's
// deadline has passed is dropped instead.
func (s *server) requeueRaw(d transport.Delivery, call *CallInfo) error {
	msg := d.Message
	msg.Headers = make(map[string]any, len(d.Headers)+1)
	for k, v := range d.Headers {
		msg.Headers[k] = v
	}
	msg.Headers[requeuesHeader] = int64(requeuesOf(d.Headers) + 1)
	msg.Expiration = 0
	if !call.Deadline.IsZero() {
		left := time.Until(call.Deadline)
		if left <= 0 {
			return d.Ack()
		}
		msg.Expiration = left
	}
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	err := s.broker.Publish(ctx, transport.Publishing{Exchange: d.Exchange, RoutingKey: d.RoutingKey, Mandatory: true, Message: msg})
	if err != nil {
		s.log.Error("hypha: could not requeue the raw call; it goes back to its queue uncounted", "method", call.Method, "error", err)
		return errors.Join(err, d.Nack(true))
	}
	return d.Ack()
}

// requeuesOf reads requeuesHeader, whatever number type it arrived as (see
// worker.HeaderCount).
func requeuesOf(headers map[string]any) int {
	return worker.HeaderCount(headers[requeuesHeader])
}
