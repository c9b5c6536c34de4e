// Package dial is where Hypha connects to a broker: the one place that turns
// the loaded config into a connection, so that every connection-level key
// (AMQP_URI, HEARTBEAT, MAX_MESSAGE_SIZE, AMQP_SSL, LOGIN_METHOD, RECONNECT,
// RPC_RETRY_POLICY, QUEUE_TYPE, QUEUE_DELIVERY_LIMIT) reaches every
// connection alike: a service's, a client's, a dispatcher's, the CLI's. It
// picks the broker by the URI's scheme: amqp:// and amqps:// reach RabbitMQ
// through transport/amqp, memory:// the embedded broker of transport/memory.
//
//	cfg, err := config.Load("", nil)
//	if err != nil { ... }
//	b, err := dial.Open(ctx, cfg.Settings, dial.Owner{Name: "reporter"})
//	if err != nil { ... }
//	defer b.Close()
//
// An fx application uses FromSettings in its constructor and Connect and
// Close as the OnStart and OnStop hooks.
package dial

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hypha-go/hypha/config"
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
	// InspectQueue reports how many messages wait in the named queue and how
	// many consumers it has, without changing it (a passive declare);
	// transport.ErrNoQueue when there is no such queue.
	InspectQueue(ctx context.Context, name string) (transport.QueueState, error)
	// ReadQueue opens a reader of the named queue, for tools that look at
	// a queue's messages one at a time; transport.ErrNoQueue when there is
	// no such queue.
	ReadQueue(ctx context.Context, name string) (transport.QueueReader, error)
}

// Owner is what the opener of a connection adds to the settings: the name
// the broker shows for the connection, and who hears of its life. No config
// key sets these.
type Owner struct {
	// Name is shown for the connection in RabbitMQ's management tools.
	Name string
	// Logger receives the connection's events; nil means slog.Default().
	Logger *slog.Logger
	// OnRestore and OnGiveUp are amqp.Options': called after each
	// reconnect, and once reconnecting has given up.
	OnRestore func()
	OnGiveUp  func(error)
}

// OptionsFrom maps every connection-level key of the loaded settings onto
// a connection's Options: HEARTBEAT (0 turns heartbeats off), MAX_MESSAGE_SIZE,
// AMQP_SSL (its files are read now: a bad one is an error naming the key),
// LOGIN_METHOD, RECONNECT, RPC_RETRY_POLICY, QUEUE_TYPE and
// QUEUE_DELIVERY_LIMIT. It is the one such mapping: FromSettings and Open use
// it, and nothing else should build Options from config.
func OptionsFrom(s config.Settings, o Owner) (Options, error) {
	tlsConfig, err := s.AMQPSSL.TLSConfig()
	if err != nil {
		return Options{}, err
	}
	heartbeat := s.Heartbeat
	if heartbeat == 0 {
		heartbeat = -1 // config's "off" is Options' negative; Options' zero is its default
	}
	return Options{
		Heartbeat:      heartbeat,
		TLS:            tlsConfig,
		LoginMethod:    s.LoginMethod,
		Name:           o.Name,
		MaxMessageSize: s.MaxMessageSize,
		Logger:         o.Logger,
		Reconnect:      transport.ReconnectPolicy(s.Reconnect),
		Retry:          transport.RetryPolicy(s.RPCRetryPolicy),
		QueueType:      s.QueueType,
		DeliveryLimit:  s.QueueDeliveryLimit,
		OnRestore:      o.OnRestore,
		OnGiveUp:       o.OnGiveUp,
	}, nil
}

// FromSettings returns the broker AMQP_URI names, set up by every
// connection-level key of s (see OptionsFrom), not connected yet: call
// Connect. A bad AMQP_URI or AMQP_SSL is an error naming the key.
func FromSettings(s config.Settings, o Owner) (Broker, error) {
	opts, err := OptionsFrom(s, o)
	if err != nil {
		return nil, err
	}
	b, err := New(s.AMQPURI, opts)
	if err != nil {
		return nil, fmt.Errorf("config AMQP_URI: %w", err)
	}
	return b, nil
}

// Open is FromSettings, connected: with amqp:// it waits for RabbitMQ per
// RECONNECT until ctx ends.
func Open(ctx context.Context, s config.Settings, o Owner) (Broker, error) {
	b, err := FromSettings(s, o)
	if err != nil {
		return nil, err
	}
	if err := b.Connect(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// Options are the connection's settings: transport/amqp's own, of which
// transport/memory takes only MaxMessageSize. Zero means that broker's
// default; see amqp.Options for what each field does.
type Options = amqp.Options

// New returns the broker for uri with opts set by hand, not connected yet:
// call Connect. Code that has loaded config uses FromSettings instead, so
// that no key is left out. uri may
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
