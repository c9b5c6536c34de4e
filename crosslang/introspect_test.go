package crosslang_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/introspect"
	"github.com/hypha-go/hypha/rpc"
)

// mixed is the Go instance of a service whose other instance is Python.
type mixed struct{}

func (mixed) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "greet", func(_ context.Context, in struct {
		Name string `json:"name"`
	}) (string, error) {
		return "hello, " + in.Name, nil
	})
}

// TestIntrospectNamekoAndMixedFleet: a nameko service does not answer
// introspection, and Fetch says so; where a Go and a Python instance share
// the service's queue, Fetch asks again until the Go one answers.
func TestIntrospectNamekoAndMixedFleet(t *testing.T) {
	uri := testbroker.URI(t)
	startNameko(t, uri, "rpc_service", "PyService", "rpc-py_service")
	startNameko(t, uri, "rpc_service", "PyMixed", "rpc-py_mixed")
	hyphatest.Run(t, uri, framework.Service("py_mixed", func() mixed { return mixed{} }))

	c, err := hyphatest.Client(t, context.Background(), uri, rpc.Config{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if _, err := introspect.Fetch(ctx, c.Proxy("py_service")); !errors.Is(err, introspect.ErrNotHypha) {
		t.Errorf("Fetch(py_service) = %v, want ErrNotHypha", err)
	}
	// Whichever instance takes the first call: each of a few calls to the
	// Python instance would fail the loop.
	for i := range 5 {
		d, err := introspect.Fetch(ctx, c.Proxy("py_mixed"))
		if err != nil {
			t.Fatalf("Fetch(py_mixed) #%d: %v, want the Go instance's description", i, err)
		}
		if _, ok := d.Method("greet"); !ok || d.Service != "py_mixed" {
			t.Fatalf("Fetch(py_mixed) = %+v", d)
		}
	}
}
