package httpentry_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/hypha-go/hypha/httpentry"
)

// TestOptionString: an option prints as the call that made it.
func TestOptionString(t *testing.T) {
	tests := []struct {
		opt  httpentry.Option
		want string
	}{
		{httpentry.Expected(errors.New("bad order")), `httpentry.Expected("bad order")`},
		{httpentry.Status(http.StatusNotFound, errors.New("no such user")), `httpentry.Status(404, "no such user")`},
		{httpentry.Status(http.StatusConflict), `httpentry.Status(409)`},
		{httpentry.ContextHeaders(), "httpentry.ContextHeaders()"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := fmt.Sprint(tt.opt); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}
