package rpc_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hypha-go/hypha/rpc"
)

// TestOptionString: an option prints as the call that made it.
func TestOptionString(t *testing.T) {
	tests := []struct {
		opt  rpc.Option
		want string
	}{
		{rpc.Doc("adds two numbers"), `rpc.Doc("adds two numbers")`},
		{rpc.Expected(errors.New("order invalid"), errors.New("no stock")), `rpc.Expected("order invalid", "no stock")`},
		{rpc.Expected(), `rpc.Expected()`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := fmt.Sprint(tt.opt); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
