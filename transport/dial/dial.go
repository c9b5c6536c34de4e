// Package dial picks the broker for a URI by its scheme: amqp:// and
// amqps:// reach RabbitMQ through transport/amqp, memory:// the embedded
// broker of transport/memory. Code that takes AMQP_URI from config uses it
// so that either works:
//
//	b, err := dial.Dial(ctx, cfg.AMQPURI, dial.Options{Name: "calculator"})
//	if err != nil { ... }
//	defer b.Close()
//
// An fx application uses New in its constructor and Connect and Close as
// the OnStart and OnStop hooks.
package dial

import (
	"context"
	"fmt"
	"strings"

	"github.com/hypha-go/hypha/internal/redact"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
	"github.com/hypha-go/hypha/transport/memory"
)

// Broker is a broker connection with its lifecycle: Connect (to call once,
// before the broker is needed), Connected and Ready for health checks.
// Both transport/amqp's and transport/memory's Broker are one.
type Broker interface {
	transport.Broker
	// Connect makes the connection, waiting for the broker until ctx ends;
	// it is a no-op on a connection already made.
	Connect(ctx context.Context) error
	// Connected reports whether the connection is up now.
	Connected() bool
	// Ready reports nil when the broker can take work, else what is missing.
	Ready() error
}

// Options are the connection's settings: transport/amqp's own, of which
// transport/memory takes only MaxMessageSize. Zero means that broker's
// default; see amqp.Options for what each field does.
type Options = amqp.Options

// New returns the broker for uri, not connected yet: call Connect. uri may
// list a cluster's nodes, comma-separated amqp:// or amqps:// URIs (see
// amqp.New). An unknown scheme is an error naming the schemes there are.
func New(uri string, opts Options) (Broker, error) {
	uris := amqp.SplitURIs(uri)
	if len(uris) == 0 {
		return nil, fmt.Errorf("hypha: no broker URI given; want an amqp://, amqps:// or memory:// URI")
	}
	scheme := redact.Scheme(uris[0]) // never a piece of a password
	switch strings.ToLower(scheme) {
	case "amqp", "amqps":
		for _, u := range uris[1:] {
			if s := redact.Scheme(u); !strings.EqualFold(s, "amqp") && !strings.EqualFold(s, "amqps") {
				return nil, fmt.Errorf("hypha: a list of broker URIs names a cluster's nodes: amqp:// or amqps:// only, got scheme %q", s)
			}
		}
		return amqp.New(uri, opts), nil
	case memory.Scheme:
		if len(uris) > 1 {
			return nil, fmt.Errorf("hypha: a list of broker URIs names a cluster's nodes: amqp:// or amqps:// only, not memory://")
		}
		return memory.New(uris[0], memory.Options{MaxMessageSize: opts.MaxMessageSize})
	}
	return nil, fmt.Errorf("hypha: broker URI scheme %q is not one of amqp://, amqps:// or memory://", scheme)
}

// Dial returns the broker for uri, connected; with amqp:// it waits for
// RabbitMQ per Options.Reconnect until ctx ends.
func Dial(ctx context.Context, uri string, opts Options) (Broker, error) {
	b, err := New(uri, opts)
	if err != nil {
		return nil, err
	}
	if err := b.Connect(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}
