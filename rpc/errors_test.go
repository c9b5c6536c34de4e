package rpc

import (
	"encoding/json"
	"testing"
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
