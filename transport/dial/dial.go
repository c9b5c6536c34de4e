// Package dial is where Hypha connects to a broker, and the one way in: Dial
// returns a connection that rpc, events and the framework then share. Every
// caller alike (a service, a standalone client or dispatcher, the hypha
// command, hyphatest) goes through Dial, so that every connection-level key
// (HEARTBEAT, MAX_MESSAGE_SIZE, AMQP_SSL, LOGIN_METHOD, RECONNECT,
// RPC_RETRY_POLICY, QUEUE_TYPE, QUEUE_DELIVERY_LIMIT) reaches every
// connection the same way. It picks the broker by the URI's scheme: amqp://
// and amqps:// reach RabbitMQ through transport/amqp, memory:// the embedded
// broker of transport/memory.
//
//	cfg, err := config.Load("", nil)
//	if err != nil { ... }
//	conn, err := dial.Dial(ctx, cfg.AMQPURI, dial.Settings(cfg.Settings), dial.Name("reporter"))
//	if err != nil { ... }
//	defer conn.Close()
//	client := rpc.NewClient(conn, rpc.ConfigFrom(cfg.Settings))
//
// Without Settings, a connection runs with config's defaults
// (config.DefaultSettings).
package dial

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/internal/redact"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp"
	"github.com/hypha-go/hypha/transport/memory"
)

// Broker is a broker connection with its lifecycle: Connect (a no-op unless
// Dial was given Lazy), Connected and Ready for health checks, and the
// queue tools of the hypha command. Both transport/amqp's and
// transport/memory's brokers are one.
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

// An Option tunes the connection Dial makes.
type Option func(*options)

// options are what Dial's Options set.
type options struct {
	settings      config.Settings
	fromConfig    bool // settings came from Settings, so a bad URI names AMQP_URI
	name          string
	logger        *slog.Logger
	onRestore     func()
	onGiveUp      func(error)
	topologyCheck time.Duration
	lazy          bool
}

// Settings applies every connection-level key of the loaded settings:
// HEARTBEAT (0 turns heartbeats off), MAX_MESSAGE_SIZE, AMQP_SSL (its files
// are read by Dial: a bad one is an error naming the key), LOGIN_METHOD,
// RECONNECT, RPC_RETRY_POLICY, QUEUE_TYPE and QUEUE_DELIVERY_LIMIT.
// AMQP_URI is not taken from s: Dial's uri names the broker.
func Settings(s config.Settings) Option {
	return func(o *options) { o.settings, o.fromConfig = s, true }
}

// Name is the name RabbitMQ's management tools show for the connection.
func Name(name string) Option { return func(o *options) { o.name = name } }

// Logger receives the connection's events; slog.Default() without it.
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// OnRestore is called after each reconnect has restored the connection, its
// topology and its consumers (for metrics).
func OnRestore(fn func()) Option { return func(o *options) { o.onRestore = fn } }

// OnGiveUp is called once reconnecting has given up (after
// RECONNECT.MAX_ELAPSED) with the reason, instead of logging it: the owner
// of the connection decides what to say and do, typically to stop. fn must
// not block, and must not call Close before returning.
func OnGiveUp(fn func(error)) Option { return func(o *options) { o.onGiveUp = fn } }

// TopologyCheck is how often the exchanges, queues and bindings declared
// through the connection are declared again while connected, so that one
// deleted under a running service comes back; negative turns the check
// off. Without it, amqp.DefaultTopologyCheck.
func TopologyCheck(every time.Duration) Option {
	return func(o *options) { o.topologyCheck = every }
}

// Lazy makes Dial return the connection without connecting it: its owner
// calls Connect later (as an fx OnStart hook does), and may meanwhile hand
// it to clients and servers that use it only once started.
func Lazy() Option { return func(o *options) { o.lazy = true } }

// Dial returns the broker uri names, connected: with amqp:// it waits for
// RabbitMQ per RECONNECT until ctx ends (or, with Lazy, returns it
// unconnected). uri may list a cluster's nodes, comma-separated amqp:// or
// amqps:// URIs (see amqp.New). An unknown scheme is an error naming the
// schemes there are. The caller closes the connection.
func Dial(ctx context.Context, uri string, opts ...Option) (Broker, error) {
	o := options{settings: config.DefaultSettings()}
	for _, opt := range opts {
		opt(&o)
	}
	b, err := newBroker(uri, o)
	if err != nil {
		return nil, err
	}
	if o.lazy {
		return b, nil
	}
	if err := b.Connect(ctx); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// amqpOptions maps the connection-level keys of o's settings, and o's own
// knobs, onto transport/amqp's Options: the one such mapping.
func amqpOptions(o options) (amqp.Options, error) {
	s := o.settings
	tlsConfig, err := s.AMQPSSL.TLSConfig()
	if err != nil {
		return amqp.Options{}, err
	}
	heartbeat := s.Heartbeat
	if heartbeat == 0 {
		heartbeat = -1 // config's "off" is Options' negative; Options' zero is its default
	}
	return amqp.Options{
		Heartbeat:      heartbeat,
		TLS:            tlsConfig,
		LoginMethod:    s.LoginMethod,
		Name:           o.name,
		MaxMessageSize: s.MaxMessageSize,
		Logger:         o.logger,
		Reconnect:      transport.ReconnectPolicy(s.Reconnect),
		Retry:          transport.RetryPolicy(s.RPCRetryPolicy),
		QueueType:      s.QueueType,
		DeliveryLimit:  s.QueueDeliveryLimit,
		TopologyCheck:  o.topologyCheck,
		OnRestore:      o.onRestore,
		OnGiveUp:       o.onGiveUp,
	}, nil
}

// newBroker returns the broker for uri set up by o, not connected yet.
func newBroker(uri string, o options) (Broker, error) {
	opts, err := amqpOptions(o)
	if err != nil {
		return nil, err
	}
	b, err := byScheme(uri, opts)
	if err != nil && o.fromConfig && uri == o.settings.AMQPURI {
		return nil, fmt.Errorf("config AMQP_URI: %w", err)
	}
	return b, err
}

// byScheme returns the broker for uri's scheme.
func byScheme(uri string, opts amqp.Options) (Broker, error) {
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
