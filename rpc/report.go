package rpc

import (
	"context"
	"errors"
	"sync"

	"github.com/google/uuid"
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

// report logs how a call that reached its method ended and returns the error
// to reply with: err itself, or, with RedactUnexpectedErrors, an opaque
// stand-in for an error the method did not declare with Expected. An error
// relayed from a downstream call is logged with relayed=true.
func (s *Server) report(ctx context.Context, call *CallInfo, st *callState, err error) error {
	if err == nil {
		return nil
	}
	attrs := []any{"method", call.Method, "error", err}
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
