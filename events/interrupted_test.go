package events_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// TestHandlerCutShortByALostConnection: a handler whose publish lost its
// connection (transport.ErrUncertain) failed with the failover, not with
// the event: the event goes back to its queue and runs again, unretried
// and not dead-lettered, logged at warn, never at error.
func TestHandlerCutShortByALostConnection(t *testing.T) {
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	logs := &syncBuffer{}
	attempts := make(chan int, 4)
	var runs atomic.Int32
	r := entrypoint.NewRegistry("mailer_failover")
	events.Handle(r, "on_created", "orders_failover", "order_created", func(ctx context.Context, o order) error {
		attempts <- events.Attempt(ctx)
		if runs.Add(1) == 1 {
			return fmt.Errorf("sending the mail: %w", transport.ErrUncertain)
		}
		return nil
	})
	srv := events.NewServer(b, r, events.ServerConfig{Service: "mailer_failover", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		srv.Stop(sctx)
	}()
	if err := dispatcher(t, "orders_failover").Dispatch(ctx, "order_created", order{ID: 1}); err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		select {
		case n := <-attempts:
			if n != 1 {
				t.Fatalf("run %d is attempt %d; want the same attempt again, not a retry", run+1, n)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d never came", run+1)
		}
	}
	waitSettled(t, "orders_failover", 10*time.Second) // the second run's outcome is settled, and logged
	if out := logs.String(); strings.Contains(out, "level=ERROR") || !strings.Contains(out, "level=WARN") {
		t.Fatalf("want the failover logged at warn, never at error:\n%s", out)
	}
}
