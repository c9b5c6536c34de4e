package httpentry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/httpentry"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
)

// bigUploads counts how many of its requests run at once.
type bigUploads struct{ running, most atomic.Int64 }

func (u *bigUploads) Register(r *entrypoint.Registry) {
	httpentry.Handle(r, "POST /upload", func(_ context.Context, in struct {
		Data string `json:"data"`
	}) (int, error) {
		n := u.running.Add(1)
		defer u.running.Add(-1)
		for m := u.most.Load(); n > m && !u.most.CompareAndSwap(m, n); m = u.most.Load() {
		}
		time.Sleep(100 * time.Millisecond) // long enough for the others to start beside it, if they could
		return len(in.Data), nil
	})
}

// TestLargeBodiesTakeTurnsForTheBudget posts bodies each larger than the
// process's whole budget, at once: every one is answered, one at a time.
func TestLargeBodiesTakeTurnsForTheBudget(t *testing.T) {
	u := &bigUploads{}
	app := hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"HTTP": map[string]any{"ADDRESS": "127.0.0.1:0"}, "MAX_INFLIGHT_BYTES": 256 << 10}),
		framework.Service("uploads", func() *bigUploads { return u }),
	)
	body := `{"data": "` + strings.Repeat("x", 1<<20) + `"}`
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			resp, err := http.Post("http://"+app.HTTPAddress()+"/upload", "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
				t.Errorf("status %d: %s", resp.StatusCode, b)
			}
		})
	}
	wg.Wait()
	if m := u.most.Load(); m != 1 {
		t.Errorf("%d requests larger than the budget ran at once, want 1", m)
	}
}
