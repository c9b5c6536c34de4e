package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/internal/ctxwire"
)

func TestRemoteErrorFromAPeer(t *testing.T) {
	tests := []struct {
		name     string
		err      RemoteError
		wantText string
		wantJSON string
	}{
		{name: "nameko error", err: RemoteError{ExcType: "ValueError", ExcPath: "builtins.ValueError", ExcArgs: []any{"bad"}, Value: "bad"},
			wantText: "ValueError: bad",
			wantJSON: `{"exc_type":"ValueError","exc_path":"builtins.ValueError","exc_args":["bad"],"value":"bad"}`},
		{name: "no value", err: RemoteError{ExcType: "KeyError"},
			wantText: "KeyError",
			wantJSON: `{"exc_type":"KeyError","exc_path":"","exc_args":[],"value":""}`},
		{name: "empty error object", err: RemoteError{},
			wantText: "RemoteError",
			wantJSON: `{"exc_type":"","exc_path":"","exc_args":[],"value":""}`},
		{name: "value without exc_type", err: RemoteError{Value: "oops"},
			wantText: "RemoteError: oops",
			wantJSON: `{"exc_type":"","exc_path":"","exc_args":[],"value":"oops"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.wantText {
				t.Errorf("Error() = %q, want %q", got, tt.wantText)
			}
			for _, v := range []any{tt.err, &tt.err} {
				got, err := json.Marshal(v)
				if err != nil || string(got) != tt.wantJSON {
					t.Errorf("json.Marshal(%T) = %s, %v; want %s", v, got, err, tt.wantJSON)
				}
			}
		})
	}
}

func TestRemoteErrorIs(t *testing.T) {
	ordersInvalid := &RemoteError{ExcType: "ValueError", ExcPath: "github.com/acme/orders.ValueError", Value: "invalid order"}
	usersTooLarge := &RemoteError{ExcType: "ValueError", ExcPath: "github.com/acme/users.ValueError", Value: "batch too large"}
	pyValueError := &RemoteError{ExcType: "ValueError", ExcPath: "builtins.ValueError", Value: "bad"}
	pyOutOfStock := &RemoteError{ExcType: "OutOfStock", ExcPath: "shop.exceptions.OutOfStock", Value: "none left"}
	tests := []struct {
		name   string
		err    *RemoteError
		target error
		want   bool
	}{
		{"same definition", &RemoteError{ExcType: "ValueError", ExcPath: "github.com/acme/orders.ValueError", Value: "other text"}, ordersInvalid, true},
		{"same exc_type, other Go package", usersTooLarge, ordersInvalid, false},
		{"Python error against a Go definition", pyValueError, ordersInvalid, false},
		{"Go error against Python's built-in", ordersInvalid, pyValueError, true},
		{"Python error against Python's built-in", &RemoteError{ExcType: "ValueError", ExcPath: "builtins.ValueError"}, pyValueError, true},
		{"other exc_type against Python's built-in", &RemoteError{ExcType: "KeyError", ExcPath: "builtins.KeyError"}, pyValueError, false},
		{"nameko's MethodNotFound from Hypha", &RemoteError{ExcType: "MethodNotFound", ExcPath: "nameko.exceptions.MethodNotFound"}, ErrMethodNotFound, true},
		{"Python class, same path", &RemoteError{ExcType: "OutOfStock", ExcPath: "shop.exceptions.OutOfStock"}, pyOutOfStock, true},
		{"Python class, other path", &RemoteError{ExcType: "OutOfStock", ExcPath: "github.com/acme/shop.OutOfStock"}, pyOutOfStock, false},
		{"target without exc_path", usersTooLarge, &RemoteError{ExcType: "ValueError"}, true},
		{"error without exc_path", &RemoteError{ExcType: "ValueError"}, ordersInvalid, true},
		{"relayed Panic is a Panic", &RemoteError{ExcType: "Panic", ExcPath: "runtime.Panic", Value: "boom"}, errPanic, true},
		{"UnknownService is ErrServiceNotFound", &RemoteError{ExcType: "UnknownService", ExcPath: errUnknownServiceExcPath}, ErrServiceNotFound, true},
		{"other error is not ErrServiceNotFound", pyValueError, ErrServiceNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(fmt.Errorf("calling: %w", tt.err), tt.target); got != tt.want {
				t.Errorf("errors.Is(%s %s, %v) = %v, want %v", tt.err.ExcType, tt.err.ExcPath, tt.target, got, tt.want)
			}
		})
	}
}

func TestToRemoteOfJoinedErrors(t *testing.T) {
	notFound := &RemoteError{ExcType: "NotFound", ExcPath: "github.com/acme/users.NotFound", Value: "no user 7"}
	locked := &RemoteError{ExcType: "Locked", ExcPath: "github.com/acme/users.Locked", Value: "user 9 is locked"}
	tests := []struct {
		name      string
		err       error
		wantType  string
		wantValue string
	}{
		{"two remote errors", errors.Join(notFound, locked), "NotFound", "NotFound: no user 7\nLocked: user 9 is locked"},
		{"wrapped join", fmt.Errorf("loading: %w", errors.Join(notFound, locked)), "NotFound", "loading: NotFound: no user 7\nLocked: user 9 is locked"},
		{"plain error first", errors.Join(errors.New("disk full"), locked), "Locked", "disk full\nLocked: user 9 is locked"},
		{"several %w", fmt.Errorf("%w; %w", notFound, locked), "NotFound", "NotFound: no user 7; Locked: user 9 is locked"},
		{"single wrap drops the type name", fmt.Errorf("loading: %w", notFound), "NotFound", "loading: no user 7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := toRemote(tt.err)
			if got.ExcType != tt.wantType || got.Value != tt.wantValue || len(got.ExcArgs) != 1 || got.ExcArgs[0] != tt.wantValue {
				t.Errorf("toRemote = %s / %q / %v, want %s / %q", got.ExcType, got.Value, got.ExcArgs, tt.wantType, tt.wantValue)
			}
		})
	}
}

// TestContextDataOutOfBoundsIsMalformedRequest: a handler that returns the
// error of a call or a dispatch that refused its context data tells its
// caller MalformedRequest, naming the limit, however it was wrapped.
func TestContextDataOutOfBoundsIsMalformedRequest(t *testing.T) {
	over := ctxwire.Headers(contextdata.Data{"auth_token": strings.Repeat("t", contextdata.MaxSize)})
	cause := ctxwire.Check(over)
	for _, err := range []error{
		contextDataError{service: "users", method: "get", err: cause},
		fmt.Errorf("hypha: event orders.order_created: %w: carry less context data", cause),
	} {
		re := toRemote(fmt.Errorf("notifying: %w", err))
		if re.ExcType != "MalformedRequest" || re.ExcPath != "nameko.exceptions.MalformedRequest" ||
			!strings.Contains(re.Value, "contextdata.MaxSize") {
			t.Errorf("%v on the wire: %+v; want MalformedRequest naming contextdata.MaxSize", err, re)
		}
	}
}
