package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/label"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport"
)

// serverConfig says how a service serves its RPC methods.
type serverConfig struct {
	Service  string // the service name: its queue is "rpc-<Service>"
	Exchange string // DefaultExchange when empty
	// Pool runs the workers; it bounds concurrent calls and sets the prefetch.
	Pool *worker.Pool
	// Prefetch is the request queue's prefetch; the pool's size when zero.
	Prefetch int
	// OnExpired, when set, is called for each call dropped because its
	// caller's deadline passed before it started (for metrics).
	OnExpired func(method string)
	// OnDuplicate, when set, is called for each copy of a request this
	// instance had already answered, acked and dropped unrun (for metrics).
	OnDuplicate func(method string)
	// OnNoReplyTo, when set, is called for each request that came without
	// a reply_to (for metrics): it runs, as nameko's protocol allows, but
	// its outcome reaches nobody.
	OnNoReplyTo func(method string)
	// ParentCallsTracked bounds the call-id stack to this many parents; zero
	// keeps none (PARENT_CALLS_TRACKED's default is 10: see
	// config.DefaultSettings).
	ParentCallsTracked int
	// RedactUnexpectedErrors sends callers, in place of every error a method
	// did not declare with Expected (panics included), an opaque Error whose
	// value is "internal error; reference <id>"; the error's log line carries
	// the same id as error_id. Expected errors go out as they are.
	RedactUnexpectedErrors bool
	// Interceptors wrap every call to the service's methods (see
	// CallInfo), the first outermost.
	Interceptors []entrypoint.Interceptor
	Logger       *slog.Logger
}

// server consumes a service's request queue and answers each call. It
// remembers the requests it has started (by message id and correlation id,
// until their deadline, at most 5 minutes and 100,000 requests) and acks and
// drops a copy of one it answered: a request its caller sent again after a
// lost connection, or one redelivered after its ack was lost. That record is
// this instance's own: a copy that another instance of the service takes
// runs there.
type server struct {
	broker   transport.Broker
	cfg      serverConfig
	methods  map[string]*rpcMethod
	raw      map[string]*rawMethod
	log      *slog.Logger
	consumer *entrypoint.Consumer
	// seen remembers the requests started here, to drop their copies.
	seen *seenRequests
	// expiredLog and noReplyToLog pace the warnings of dropped expired
	// calls and of calls without a reply_to.
	expiredLog, noReplyToLog everySecond
}

// everySecond lets a warning that any sender can cause be logged at most
// once a second.
type everySecond struct{ last atomic.Int64 } // Unix ns

// allow reports whether the warning may be logged now.
func (e *everySecond) allow() bool {
	now := time.Now().UnixNano()
	last := e.last.Load()
	return now-last >= int64(time.Second) && e.last.CompareAndSwap(last, now)
}

// QueueName is the request queue of a service: "rpc-<service>".
func QueueName(service string) string { return "rpc-" + service }

// newServer returns a server for the methods registered in r.
func newServer(broker transport.Broker, r *entrypoint.Registry, cfg serverConfig) *server {
	if cfg.Exchange == "" {
		cfg.Exchange = DefaultExchange
	}
	if cfg.Pool == nil {
		cfg.Pool = worker.NewPool(10)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{broker: broker, cfg: cfg, methods: map[string]*rpcMethod{}, raw: map[string]*rawMethod{}, log: cfg.Logger,
		seen: newSeenRequests(dedupeLimit, dedupeWindow)}
	for _, m := range entrypoint.Of[*rpcMethod](r) {
		s.methods[m.name] = m
	}
	for _, m := range entrypoint.Of[*rawMethod](r) {
		s.raw[m.name] = m
	}
	s.consumer = entrypoint.NewConsumer(broker, entrypoint.ConsumerConfig{
		Queue: QueueName(cfg.Service), Pool: cfg.Pool, Prefetch: cfg.Prefetch, Logger: cfg.Logger,
		Label: func(d transport.Delivery) string { return d.RoutingKey },
		Serve: s.serve, Refuse: s.refuse,
	})
	return s
}

// Start declares the exchange and the service's queue, bound with
// "<service>.*", and starts consuming with prefetch = the pool's size.
func (s *server) Start(ctx context.Context) error {
	if err := s.broker.DeclareExchange(ctx, transport.Exchange{Name: s.cfg.Exchange, Kind: transport.Topic, Durable: true}); err != nil {
		return err
	}
	if err := s.broker.DeclareQueue(ctx, transport.Queue{
		Name: QueueName(s.cfg.Service), Durable: true,
		Bindings: []transport.Binding{{Exchange: s.cfg.Exchange, RoutingKey: s.cfg.Service + ".*"}},
	}); err != nil {
		return err
	}
	return s.consumer.Start(ctx)
}

// Stop stops taking calls (Drain), waits for running workers to reply
// (bounded by ctx), then closes the consumer (Close); calls not finished by
// then go back to the queue for another instance.
func (s *server) Stop(ctx context.Context) error {
	drainErr := s.Drain(ctx)
	waitErr := s.cfg.Pool.Wait(ctx)
	if waitErr != nil {
		s.log.Warn("hypha: stopped before every call finished; unfinished calls go back to the queue",
			"service", s.cfg.Service, "busy", s.cfg.Pool.Busy())
	}
	return errors.Join(drainErr, waitErr, s.Close())
}

// Drain stops taking new calls; calls already running go on, and calls
// received but not started go back to the queue.
func (s *server) Drain(ctx context.Context) error { return s.consumer.Drain(ctx) }

// Close closes the consumer; unacked calls go back to the queue.
func (s *server) Close() error { return s.consumer.Close() }

// serve runs one call and settles its delivery: reply first, then ack. A
// copy of a request this instance already answered is acked and dropped
// (see claim); raw methods get every copy, with its MessageID and
// Redelivered, and decide for themselves.
func (s *server) serve(ctx context.Context, d transport.Delivery) {
	call := s.callInfo(d)
	if d.ReplyTo == "" {
		s.noReplyTo(call)
	}
	if !call.Deadline.IsZero() && time.Now().After(call.Deadline) {
		s.expired(call)
		_ = d.Ack()
		return
	}
	if m, ok := s.raw[call.Method]; ok {
		s.serveRaw(ctx, d, call, m)
		return
	}
	run, ok := s.claim(ctx, d, call)
	if !ok {
		return
	}
	answered := false
	defer func() { s.seen.finish(run, answered) }() // on a panic too: then the copy may run
	result, err := s.handle(ctx, d, call)
	if isAbandoned(err) {
		// Stopping or lost: the request runs again, here or elsewhere,
		// and that run answers.
		_ = d.Nack(true)
		return
	}
	body, encErr := encodeReply(result, err)
	if encErr != nil {
		s.log.Error("hypha: result cannot be encoded as JSON", "method", call.Method, "error", encErr)
		body, _ = encodeReply(nil, unserializable(result, encErr))
	}
	answered = s.answer(d, call, body)
}

// refuse answers a call that cannot be served (see entrypoint.ConsumerConfig)
// with MalformedRequest, or Panic when serving it panicked, and acks it.
func (s *server) refuse(d transport.Delivery, cause error) {
	call := s.callInfo(d)
	if d.ReplyTo == "" {
		s.noReplyTo(call)
	}
	var rerr *RemoteError
	if p, ok := errors.AsType[*worker.PanicError](cause); ok {
		rerr = panicked(p.Value)
		if s.cfg.RedactUnexpectedErrors {
			id := uuid.NewString()
			s.log.Error("hypha: call failed", "method", call.Method, "error", rerr, "error_id", id)
			rerr = redacted(id)
		}
	} else {
		s.log.Warn("hypha: malformed request", "method", call.Method, "correlation_id", d.CorrelationID, "error", cause)
		rerr = malformed(cause)
	}
	body, _ := encodeReply(nil, rerr)
	call.ReplyHeaders = nil
	s.answer(d, call, body)
}

// callInfo describes the call a delivery carries.
func (s *server) callInfo(d transport.Delivery) *CallInfo {
	deadline := deadlineOf(d)
	return &CallInfo{
		Service: s.cfg.Service, Method: strings.TrimPrefix(d.RoutingKey, s.cfg.Service+"."),
		CorrelationID: d.CorrelationID, Headers: d.Headers, Deadline: deadline,
		Exchange: d.Exchange, RoutingKey: d.RoutingKey, BodySize: len(d.Body), ReplyHeaders: map[string]any{},
	}
}

// answer publishes the reply when the caller asked for one, then acks. A
// reply too large to send is replaced by an error saying so. It reports
// false when the reply may have been lost with the connection: the request
// then comes back and must run again.
func (s *server) answer(d transport.Delivery, call *CallInfo, body []byte) bool {
	sent := true
	if d.ReplyTo != "" {
		err := s.reply(d, body, contentTypeJSON, call.ReplyHeaders, call.Deadline)
		if errors.Is(err, transport.ErrTooLarge) {
			s.log.Error("hypha: reply too large to send; the caller gets an error instead", "method", call.Method, "error", err)
			body, _ = encodeReply(nil, replyTooLarge(err))
			err = s.reply(d, body, contentTypeJSON, nil, call.Deadline)
		}
		sent = !s.replyFailed(call, d.ReplyTo, err)
	}
	if err := d.Ack(); err != nil {
		s.log.Warn("hypha: ack failed", "method", call.Method, "error", err)
	}
	return sent
}

// replyFailed logs why a reply was not sent, if it was not, at the level
// its cause deserves, and reports whether the reply may have been lost
// with the connection. Every reply, plain or raw, is logged here.
func (s *server) replyFailed(call *CallInfo, replyTo string, err error) (lost bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		s.log.Info("hypha: reply not sent: the caller's deadline passed", "method", call.Method)
	case errors.Is(err, transport.ErrUncertain):
		s.log.Warn("hypha: reply may be lost with the connection; an unacked call will be redelivered", "method", call.Method)
		return true
	case err != nil:
		// Requeueing would run the call again only to fail the same
		// way; a reply lost with the connection is redelivered anyway,
		// since the ack that follows cannot reach the broker either.
		s.log.Error("hypha: reply not sent", "method", call.Method, "reply_to", replyTo, "error", err)
	}
	return false
}

// handle decodes and runs the call; every failure becomes the error to reply
// with. A panic outside the handler reaches the worker, which refuses the call.
func (s *server) handle(ctx context.Context, d transport.Delivery, call *CallInfo) (any, error) {
	req, err := decodeRequest(d.ContentType, d.Body)
	if err != nil {
		s.log.Warn("hypha: malformed request", "method", call.Method, "error", err)
		return nil, malformed(err)
	}
	m, ok := s.methods[call.Method]
	if !ok {
		return s.methodNotFound(ctx, d, call)
	}
	call.method = m
	in, err := m.binder.bind(req)
	if err != nil {
		return nil, &RemoteError{ExcType: ErrIncorrectSignature.ExcType, ExcPath: ErrIncorrectSignature.ExcPath,
			ExcArgs: []any{err.Error()}, Value: err.Error()}
	}
	ctx, cancel := s.workerContext(ctx, d, call)
	defer cancel()
	ctx, st := withCallState(ctx)
	err = entrypoint.Intercept(s.cfg.Interceptors, call.serverCall(), func(ctx context.Context) error {
		var err error
		call.Result, err = recovered(st, func() (any, error) { return m.call(ctx, in) })
		return err
	})(ctx)
	return call.Result, s.report(ctx, d, call, st, err, true)
}

// methodNotFound answers a call to a method the service lacks through the
// interceptors, so that it is traced and counted like any other call.
func (s *server) methodNotFound(ctx context.Context, d transport.Delivery, call *CallInfo) (any, error) {
	ctx, cancel := s.workerContext(ctx, d, call)
	defer cancel()
	call.Unknown = true
	err := entrypoint.Intercept(s.cfg.Interceptors, call.serverCall(), func(context.Context) error {
		return &RemoteError{ExcType: ErrMethodNotFound.ExcType, ExcPath: ErrMethodNotFound.ExcPath,
			ExcArgs: []any{call.Method}, Value: call.Method}
	})(ctx)
	return call.Result, err
}

// recovered runs the handler, turning its panic into a Panic error, so that
// the interceptors see it as the call's error; st keeps the stack for the log.
func recovered(st *callState, fn func() (any, error)) (res any, err error) {
	defer func() {
		if p := recover(); p != nil {
			re := panicked(p)
			st.recordPanic(re, debug.Stack())
			res, err = nil, re
		}
	}()
	return fn()
}

// expired drops a call whose caller gave up before it started: logged at
// warn, at most once a second, and counted through OnExpired.
func (s *server) expired(call *CallInfo) {
	if s.cfg.OnExpired != nil {
		s.cfg.OnExpired(s.methodLabel(call.Method))
	}
	if !s.expiredLog.allow() {
		return
	}
	s.log.Warn("hypha: dropping a call whose caller gave up before it started (logged at most once a second)",
		"method", call.Method, "correlation_id", call.CorrelationID, "late_by", time.Since(call.Deadline).Round(time.Millisecond))
}

// noReplyTo notes a request that came without a reply_to: it runs, and its
// outcome reaches nobody, so it is counted through OnNoReplyTo and logged
// at warn, at most once a second, since any sender can cause it.
func (s *server) noReplyTo(call *CallInfo) {
	if s.cfg.OnNoReplyTo != nil {
		s.cfg.OnNoReplyTo(s.methodLabel(call.Method))
	}
	if s.noReplyToLog.allow() {
		s.log.Warn("hypha: a request came without reply_to; it runs, but its outcome reaches nobody (logged at most once a second)",
			"method", call.Method, "correlation_id", call.CorrelationID)
	}
}

// methodLabel is a method name fit for a metric's label: the name of a
// method the service has, else label.Other, since a caller may send any.
func (s *server) methodLabel(method string) string {
	if _, ok := s.methods[method]; ok {
		return method
	}
	if _, ok := s.raw[method]; ok {
		return method
	}
	return label.Other
}

// cancelled reports whether a handler's err is its context ending: the
// caller's deadline, the stop's grace period, or a lost connection.
func cancelled(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// workerContext is the handler's context: the caller's deadline, its context
// data, and this call's id pushed on the call-id stack.
func (s *server) workerContext(ctx context.Context, d transport.Delivery, call *CallInfo) (context.Context, context.CancelFunc) {
	id := fmt.Sprintf("%s.%s.%s", s.cfg.Service, call.Method, uuid.NewString())
	ctx = contextdata.Incoming(ctx, d.Headers, id, s.cfg.ParentCallsTracked+1)
	if !call.Deadline.IsZero() {
		return context.WithDeadline(ctx, call.Deadline)
	}
	return context.WithCancel(ctx)
}

// reply publishes the reply, waiting out a reconnect until the caller's
// deadline (or replyTimeout when the caller sent none).
func (s *server) reply(d transport.Delivery, body []byte, contentType string, headers map[string]any, deadline time.Time) error {
	exchange := s.cfg.Exchange
	if strings.HasPrefix(d.ReplyTo, directReplyTo) {
		exchange = "" // RabbitMQ's direct reply-to answers through the default exchange
	}
	if deadline.IsZero() {
		deadline = time.Now().Add(replyTimeout)
	}
	encoding := ""
	if contentType == contentTypeJSON {
		encoding = encodingUTF8
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	return s.broker.Publish(ctx, transport.Publishing{
		Exchange:   exchange,
		RoutingKey: d.ReplyTo,
		Message: transport.Message{
			Body: body, ContentType: contentType, ContentEncoding: encoding,
			// In the request's delivery mode: a caller that sent it
			// transient chose speed over surviving a broker restart.
			CorrelationID: d.CorrelationID, Persistent: d.Persistent, Headers: headers,
		},
	})
}

func encodeReply(result any, err error) ([]byte, error) {
	if err != nil {
		return json.Marshal(replyBody{Result: json.RawMessage("null"), Error: toRemote(err)})
	}
	raw, encErr := json.Marshal(result)
	if encErr != nil {
		return nil, encErr
	}
	return json.Marshal(replyBody{Result: raw})
}

// panicked is the error a recovered panic becomes on the wire: its value, never its stack.
func panicked(p any) *RemoteError {
	return &RemoteError{ExcType: panicExcType, ExcPath: errPanic.ExcPath, ExcArgs: []any{fmt.Sprint(p)}, Value: fmt.Sprint(p)}
}

func replyTooLarge(err error) *RemoteError {
	return &RemoteError{ExcType: plainExcType, ExcPath: rpcErrorPath,
		ExcArgs: []any{err.Error()}, Value: err.Error()}
}

func malformed(err error) *RemoteError {
	return &RemoteError{ExcType: ErrMalformedRequest.ExcType, ExcPath: ErrMalformedRequest.ExcPath,
		ExcArgs: []any{err.Error()}, Value: err.Error()}
}

func unserializable(result any, err error) *RemoteError {
	value := fmt.Sprintf("Unserializable value: `%v`", result)
	return &RemoteError{ExcType: ErrUnserializableValue.ExcType, ExcPath: ErrUnserializableValue.ExcPath,
		ExcArgs: []any{}, Value: value}
}
