package events_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/transport"
)

// stuckBroker is a transport.Broker whose DeclareExchange blocks until
// release closes or its context ends; publishes succeed at once.
type stuckBroker struct {
	declaring chan struct{} // receives when a declaration starts
	release   chan struct{}
}

func (b *stuckBroker) DeclareExchange(ctx context.Context, _ transport.Exchange) error {
	b.declaring <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *stuckBroker) DeclareQueue(context.Context, transport.Queue) error { return nil }
func (b *stuckBroker) DeleteQueue(context.Context, string) error           { return nil }
func (b *stuckBroker) Publish(context.Context, transport.Publishing) error { return nil }
func (b *stuckBroker) Consume(context.Context, transport.ConsumeOptions, transport.Handler) (transport.Consumer, error) {
	return nil, errors.New("stuckBroker does not consume")
}
func (b *stuckBroker) Close() error { return nil }

// TestDispatchHonoursItsDeadlineBehindADeclaration: a Dispatch whose deadline
// passes while another Dispatch is declaring the exchange returns then, and
// later dispatches go on once the declaration is done.
func TestDispatchHonoursItsDeadlineBehindADeclaration(t *testing.T) {
	b := &stuckBroker{declaring: make(chan struct{}, 2), release: make(chan struct{})}
	d := events.NewDispatcher(b, events.DispatcherConfig{Source: "stuck"})
	first := make(chan error, 1)
	go func() { first <- d.Dispatch(context.Background(), "tick", 1) }()
	<-b.declaring

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := d.Dispatch(ctx, "tick", 2)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("a dispatch with a 100 ms deadline waited %s behind another's declaration", took)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stuck.events") {
		t.Errorf("dispatch past its deadline = %v, want context.DeadlineExceeded naming the exchange", err)
	}

	close(b.release)
	if err := <-first; err != nil {
		t.Fatalf("the declaring dispatch: %v", err)
	}
	if err := d.Dispatch(context.Background(), "tick", 3); err != nil {
		t.Fatal(err)
	}
	if n := len(b.declaring); n != 0 {
		t.Errorf("the exchange was declared %d more times after it succeeded", n)
	}
}
