package rpc

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/transport"
)

// callState is what a server learns about one call while its handler runs:
// which errors came back from the calls the handler made, and the handler's
// panic, if any.
type callState struct {
	mu       sync.Mutex
	received map[*RemoteError]struct{}
	panicked *RemoteError
	stack    []byte
}

type callStateKey struct{}

// withCallState gives a handler's context a new callState, which the calls
// made with that context (or one derived from it) report their errors to.
func withCallState(ctx context.Context) (context.Context, *callState) {
	st := &callState{}
	return context.WithValue(ctx, callStateKey{}, st), st
}

// noteReceived records that re came over the wire in reply to a call made
// with ctx, so that the server whose handler made the call can tell re, when
// the handler returns it, from an error of its own.
func noteReceived(ctx context.Context, re *RemoteError) {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	if st == nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.received == nil {
		st.received = map[*RemoteError]struct{}{}
	}
	st.received[re] = struct{}{}
}

// isRelayed reports whether err, returned by the handler whose context is
// ctx, carries an error a downstream service sent: the one toRemote would put
// on the wire came in a reply.
func isRelayed(ctx context.Context, err error) bool {
	st, _ := ctx.Value(callStateKey{}).(*callState)
	return st.relayed(err)
}

func (st *callState) relayed(err error) bool {
	var re *RemoteError
	if st == nil || !errors.As(err, &re) {
		return false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	_, ok := st.received[re]
	return ok
}

// recordPanic remembers the handler's panic and its stack, for the log.
func (st *callState) recordPanic(re *RemoteError, stack []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.panicked, st.stack = re, stack
}

// stackOf is the stack of the handler's panic when err is that panic, else nil.
func (st *callState) stackOf(err error) []byte {
	var re *RemoteError
	if !errors.As(err, &re) {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if re != st.panicked {
		return nil
	}
	return st.stack
}

// abandonedError is what report returns for a call abandoned with its
// worker (see report): the call is put back on its queue, never answered.
type abandonedError struct{ err error }

func (e *abandonedError) Error() string { return "hypha: call abandoned: " + e.err.Error() }
func (e *abandonedError) Unwrap() error { return e.err }

// isAbandoned reports whether report found err's call abandoned.
func isAbandoned(err error) bool {
	_, ok := errors.AsType[*abandonedError](err)
	return ok
}

// report decides how a call that reached its method ended, logs it, and
// returns the error to reply with: err itself, or, with
// RedactUnexpectedErrors, an opaque stand-in for an error the method did
// not declare with Expected. An error relayed from a downstream call is
// logged with relayed=true.
//
// Whether the call was abandoned is decided first, once, before any reply
// could be composed: when the service is stopping, the delivery is lost
// with its connection, or the error is a lost connection's (a publish whose
// fate is unknown), the request runs again and that run answers, so report
// logs it at warn, whatever the error, and returns an *abandonedError,
// which the caller settles by requeueing it unanswered (unless requeue is
// false: a raw method acked the request early, so no run follows). A
// failover thus logs at one level, and no reply of a run that failed with
// it can race the run that follows.
func (s *server) report(ctx context.Context, d transport.Delivery, call *CallInfo, st *callState, err error, requeue bool) error {
	if err == nil {
		return nil
	}
	attrs := []any{"method", call.Method, "error", err}
	if entrypoint.Interrupted(ctx, err) || entrypoint.Lost(d) {
		if !requeue {
			s.log.WarnContext(ctx, "hypha: call cut short by the stop or a lost connection; it was acked, so it answers",
				append(attrs, "cause", context.Cause(ctx))...)
			return err
		}
		s.log.WarnContext(ctx, "hypha: call abandoned with its worker; it goes back to its queue and runs again",
			append(attrs, "cause", context.Cause(ctx))...)
		return &abandonedError{err: err}
	}
	if st.relayed(err) {
		attrs = append(attrs, "relayed", true)
	}
	if call.IsExpected(err) {
		call.ReplyHeaders[expectedErrorHeader] = true
		s.log.InfoContext(ctx, "hypha: call ended with an expected error", attrs...)
		return err
	}
	if cancelled(ctx, err) {
		s.log.WarnContext(ctx, "hypha: call gave up: its context ended", append(attrs, "cause", context.Cause(ctx))...)
		return err
	}
	msg := "hypha: call failed"
	if stack := st.stackOf(err); stack != nil {
		msg = "hypha: handler panicked"
		attrs = append(attrs, "stack", string(stack))
	}
	if !s.cfg.RedactUnexpectedErrors {
		s.log.ErrorContext(ctx, msg, attrs...)
		return err
	}
	id := uuid.NewString()
	s.log.ErrorContext(ctx, msg, append(attrs, "error_id", id)...)
	return redacted(id)
}

// redacted is the error a caller receives in place of an unexpected one when
// the server redacts them: it says only where to look in the server's log.
func redacted(id string) *RemoteError {
	value := "internal error; reference " + id
	return &RemoteError{ExcType: plainExcType, ExcPath: rpcErrorPath, ExcArgs: []any{value}, Value: value}
}
