package httpentry_test

import (
	"context"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
)

type slow struct {
	started chan struct{}
	release chan struct{}
}

func (s *slow) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "GET /slow", func(ctx context.Context, _ struct{}) (string, error) {
		close(s.started)
		<-s.release
		return "done", nil
	})
}

// A stop lets a running request finish within GRACE_PERIOD, while new
// requests get 503.
func TestStopFinishesRunningRequests(t *testing.T) {
	s := &slow{started: make(chan struct{}), release: make(chan struct{})}
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"HTTP": map[string]any{"ADDRESS": "127.0.0.1:0"}}),
		framework.Service("slow", func() *slow { return s }),
	)
	base := "http://" + app.HTTPAddress()
	first := make(chan response, 1)
	go func() { first <- do(t, "GET", base+"/slow", "", nil) }()
	<-s.started
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := do(t, "GET", base+"/slow", "", nil)
		if r.status == 503 && r.errorOf(t)["exc_type"] == "ServiceUnavailable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a request during the stop got %d %s, want 503", r.status, r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(s.release)
	if r := <-first; r.status != 200 {
		t.Fatalf("the running request got %d %s", r.status, r.body)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}
