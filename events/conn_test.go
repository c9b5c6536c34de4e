package events_test

import (
	"context"
	"testing"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/transport/dial"
)

// dialDispatcher returns a dispatcher with cfg on a connection of its own to
// uri, named "<source>-dispatcher" and closed when the test ends.
func dialDispatcher(t testing.TB, ctx context.Context, uri string, cfg events.DispatcherConfig) (*events.Dispatcher, error) {
	t.Helper()
	conn, err := dial.Dial(ctx, uri, dial.Name(cfg.Source+"-dispatcher"))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	return events.NewDispatcher(conn, cfg), nil
}
