package framework

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/amqp"
)

// Defaults of the standard keys: what a service gets for a key that config.yaml, the environment and the
// overrides all leave out.
const (
	DefaultAMQPURI                = "amqp://guest:guest@localhost:5672/" // AMQP_URI
	DefaultRPCExchange            = rpc.DefaultExchange                  // RPC_EXCHANGE, shared with nameko
	DefaultRPCTimeout             = rpc.DefaultTimeout                   // RPC_TIMEOUT
	DefaultRPCMaxRetries          = 3                                    // RPC_RETRY_POLICY.MAX_RETRIES
	DefaultRPCRetryIntervalStart  = 100 * time.Millisecond               // RPC_RETRY_POLICY.INTERVAL_START
	DefaultRPCRetryIntervalStep   = 200 * time.Millisecond               // RPC_RETRY_POLICY.INTERVAL_STEP
	DefaultRPCRetryIntervalMax    = time.Second                          // RPC_RETRY_POLICY.INTERVAL_MAX
	DefaultReconnectIntervalStart = amqp.DefaultReconnectIntervalStart   // RECONNECT.INTERVAL_START
	DefaultReconnectIntervalMax   = amqp.DefaultReconnectIntervalMax     // RECONNECT.INTERVAL_MAX
	DefaultReconnectMaxElapsed    = time.Duration(0)                     // RECONNECT.MAX_ELAPSED: retry forever
	DefaultMaxWorkers             = 10                                   // MAX_WORKERS, also the prefetch count
	DefaultGracePeriod            = 10 * time.Second                     // GRACE_PERIOD
	DefaultHeartbeat              = amqp.DefaultHeartbeat                // HEARTBEAT
	DefaultParentCallsTracked     = rpc.DefaultParentCallsTracked        // PARENT_CALLS_TRACKED
	DefaultSerializer             = "json"                               // SERIALIZER, the only one supported
	DefaultLogLevel               = slog.LevelInfo                       // LOG_LEVEL
	DefaultTracingExporter        = "none"                               // TRACING.EXPORTER: traces off
	DefaultTracingEndpoint        = "http://localhost:4318"              // TRACING.ENDPOINT: a local collector, OTLP/HTTP
	DefaultTracingProtocol        = "http/protobuf"                      // TRACING.PROTOCOL
	DefaultTracingSamplerRatio    = 1.0                                  // TRACING.SAMPLER_RATIO: every trace
	DefaultMetricsAddress         = ""                                   // METRICS.ADDRESS: no /metrics endpoint
	DefaultHealthAddress          = ""                                   // HEALTH.ADDRESS: the same as METRICS.ADDRESS
	DefaultMaxMessageSize         = amqp.DefaultMaxMessageSize           // MAX_MESSAGE_SIZE: 8 MiB
	DefaultRPCMaxInFlight         = rpc.DefaultMaxInFlight               // RPC_MAX_IN_FLIGHT
	DefaultEventMaxRetries        = events.DefaultMaxRetries             // EVENTS.MAX_RETRIES
	DefaultEventPublishTimeout    = events.DefaultPublishTimeout         // EVENTS.PUBLISH_TIMEOUT
)

// maxPrefetch bounds MAX_WORKERS: it becomes basic.qos's prefetch-count, a 16-bit field in AMQP 0-9-1.
const maxPrefetch = 65535

// configFileEnv names the environment variable that points at config.yaml; it is not a config key.
const configFileEnv = "HYPHA_CONFIG"

// Upper-case names of the standard keys, as they are stored after loading.
const (
	keyAMQPURI            = "AMQP_URI"
	keyRPCExchange        = "RPC_EXCHANGE"
	keyRPCTimeout         = "RPC_TIMEOUT"
	keyRetryPolicy        = "RPC_RETRY_POLICY"
	keyReconnect          = "RECONNECT"
	keyMaxWorkers         = "MAX_WORKERS"
	keyGracePeriod        = "GRACE_PERIOD"
	keyHeartbeat          = "HEARTBEAT"
	keyParentCallsTracked = "PARENT_CALLS_TRACKED"
	keySerializer         = "SERIALIZER"
	keyLogLevel           = "LOG_LEVEL"
	keyMaxRetries         = "MAX_RETRIES"
	keyIntervalStart      = "INTERVAL_START"
	keyIntervalStep       = "INTERVAL_STEP"
	keyIntervalMax        = "INTERVAL_MAX"
	keyMaxElapsed         = "MAX_ELAPSED"
	keyTracing            = "TRACING"
	keyExporter           = "EXPORTER"
	keyEndpoint           = "ENDPOINT"
	keyProtocol           = "PROTOCOL"
	keySamplerRatio       = "SAMPLER_RATIO"
	keyMetrics            = "METRICS"
	keyHealth             = "HEALTH"
	keyMaxMessageSize     = "MAX_MESSAGE_SIZE"
	keyRPCMaxInFlight     = "RPC_MAX_IN_FLIGHT"
	keyAddress            = "ADDRESS"
	keyEvents             = "EVENTS"
	keyPublishTimeout     = "PUBLISH_TIMEOUT"
)

// The expected form of each kind of value, shared by the type checks at load and by Validate.
const (
	wantAMQPURI      = "an amqp:// or amqps:// URL"
	wantExchange     = "a non-empty exchange name"
	wantSecondsAbove = "seconds > 0"
	wantSeconds      = "seconds >= 0"
	wantCount        = "a whole number >= 0"
	wantWorkers      = "a whole number >= 1"
	wantSerializer   = `"json"`
	wantLogLevel     = "debug, info, warn or error"
	wantExporter     = "otlp, console or none"
	wantEndpoint     = "an http:// or https:// URL"
	wantProtocol     = "http/protobuf or grpc"
	wantRatio        = "a number from 0 to 1"
	wantHostPort     = "host:port"
	wantBytes        = "a whole number of bytes > 0"
	wantInFlight     = "a whole number >= 1"
)

// Settings are the standard keys of config.yaml, typed and validated. Durations are written in
// config.yaml as seconds (fractions allowed).
type Settings struct {
	AMQPURI            string          // AMQP_URI: the broker, an amqp:// or amqps:// URL
	RPCExchange        string          // RPC_EXCHANGE (nameko: rpc_exchange): the RPC exchange
	RPCTimeout         time.Duration   // RPC_TIMEOUT: a call's deadline when its context has none sooner; > 0
	RPCRetryPolicy     RetryPolicy     // RPC_RETRY_POLICY: retries of a failed publish
	Reconnect          ReconnectPolicy // RECONNECT: backoff after losing the broker
	MaxWorkers         int             // MAX_WORKERS (max_workers): concurrent workers per service = prefetch
	GracePeriod        time.Duration   // GRACE_PERIOD: time for in-flight work to finish on stop; >= 0
	Heartbeat          time.Duration   // HEARTBEAT: AMQP heartbeat interval; 0 turns heartbeats off
	ParentCallsTracked int             // PARENT_CALLS_TRACKED (parent_calls_tracked): call_id_stack keeps this many parents
	Serializer         string          // SERIALIZER (serializer): only "json"
	LogLevel           slog.Level      // LOG_LEVEL: debug, info, warn or error
	Tracing            TracingSettings // TRACING: OpenTelemetry traces
	Metrics            MetricsSettings // METRICS: the Prometheus /metrics endpoint
	Health             HealthSettings  // HEALTH: the /healthz and /readyz endpoints
	MaxMessageSize     int64           // MAX_MESSAGE_SIZE: the largest message body sent or received, in bytes; > 0
	RPCMaxInFlight     int             // RPC_MAX_IN_FLIGHT: calls one client may wait on at once; >= 1
	Events             EventsSettings  // EVENTS: event dispatch and handling
}

// TracingSettings choose where OpenTelemetry traces go. config.yaml takes their defaults from the
// standard OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL.
type TracingSettings struct {
	Exporter     string  // EXPORTER: "otlp", "console" or "none" (read case-insensitively, kept lower-case)
	Endpoint     string  // ENDPOINT: the collector, an http:// or https:// URL; checked only for otlp
	Protocol     string  // PROTOCOL: "http/protobuf" or "grpc"
	SamplerRatio float64 // SAMPLER_RATIO: the share of traces kept, 0 to 1
}

// MetricsSettings place the Prometheus /metrics endpoint.
type MetricsSettings struct {
	Address string // ADDRESS: host:port to listen on, numeric port; "" (or null) = no endpoint
}

// HealthSettings place the /healthz (alive) and /readyz (ready for work) endpoints.
type HealthSettings struct {
	Address string // ADDRESS: host:port to listen on, numeric port; "" (or null) = METRICS.ADDRESS, both "" = no endpoints
}

// EventsSettings tune event dispatch and handling.
type EventsSettings struct {
	MaxRetries     int           // MAX_RETRIES (max_retries): how many times a failing event handler's event is retried (when the handler asks for requeue on error) before it is dead-lettered; default 3; >= 0
	PublishTimeout time.Duration // PUBLISH_TIMEOUT: seconds a Dispatch may wait for the broker (reconnects, confirms) before failing; default 30; > 0
}

// RetryPolicy is kombu's linear retry policy for publishing: after the n-th failure wait
// IntervalStart + (n-1)*IntervalStep, at most IntervalMax, and give up after MaxRetries retries.
type RetryPolicy struct {
	MaxRetries    int           // MAX_RETRIES (max_retries); 0 means no retry
	IntervalStart time.Duration // INTERVAL_START (interval_start)
	IntervalStep  time.Duration // INTERVAL_STEP (interval_step)
	IntervalMax   time.Duration // INTERVAL_MAX (interval_max)
}

// ReconnectPolicy is the exponential, jittered backoff used to reach the broker again: waits grow from
// IntervalStart to IntervalMax, and stop after MaxElapsed in total, or never when MaxElapsed is 0.
type ReconnectPolicy struct {
	IntervalStart time.Duration // INTERVAL_START; > 0, or the backoff could never grow
	IntervalMax   time.Duration // INTERVAL_MAX; >= IntervalStart
	MaxElapsed    time.Duration // MAX_ELAPSED; 0 = retry forever
}

// DefaultSettings returns the settings a service runs with when config.yaml sets nothing.
func DefaultSettings() Settings {
	return Settings{
		AMQPURI:     DefaultAMQPURI,
		RPCExchange: DefaultRPCExchange,
		RPCTimeout:  DefaultRPCTimeout,
		RPCRetryPolicy: RetryPolicy{
			MaxRetries:    DefaultRPCMaxRetries,
			IntervalStart: DefaultRPCRetryIntervalStart,
			IntervalStep:  DefaultRPCRetryIntervalStep,
			IntervalMax:   DefaultRPCRetryIntervalMax,
		},
		Reconnect: ReconnectPolicy{
			IntervalStart: DefaultReconnectIntervalStart,
			IntervalMax:   DefaultReconnectIntervalMax,
			MaxElapsed:    DefaultReconnectMaxElapsed,
		},
		MaxWorkers:         DefaultMaxWorkers,
		GracePeriod:        DefaultGracePeriod,
		Heartbeat:          DefaultHeartbeat,
		ParentCallsTracked: DefaultParentCallsTracked,
		Serializer:         DefaultSerializer,
		LogLevel:           DefaultLogLevel,
		Tracing: TracingSettings{
			Exporter:     DefaultTracingExporter,
			Endpoint:     DefaultTracingEndpoint,
			Protocol:     DefaultTracingProtocol,
			SamplerRatio: DefaultTracingSamplerRatio,
		},
		Metrics:        MetricsSettings{Address: DefaultMetricsAddress},
		Health:         HealthSettings{Address: DefaultHealthAddress},
		MaxMessageSize: DefaultMaxMessageSize,
		RPCMaxInFlight: DefaultRPCMaxInFlight,
		Events: EventsSettings{
			MaxRetries:     DefaultEventMaxRetries,
			PublishTimeout: DefaultEventPublishTimeout,
		},
	}
}

// settingsMap is s as the upper-case key tree that config.yaml would hold, durations in seconds.
func settingsMap(s Settings) map[string]any {
	return map[string]any{
		keyAMQPURI:     s.AMQPURI,
		keyRPCExchange: s.RPCExchange,
		keyRPCTimeout:  seconds(s.RPCTimeout),
		keyRetryPolicy: map[string]any{
			keyMaxRetries:    s.RPCRetryPolicy.MaxRetries,
			keyIntervalStart: seconds(s.RPCRetryPolicy.IntervalStart),
			keyIntervalStep:  seconds(s.RPCRetryPolicy.IntervalStep),
			keyIntervalMax:   seconds(s.RPCRetryPolicy.IntervalMax),
		},
		keyReconnect: map[string]any{
			keyIntervalStart: seconds(s.Reconnect.IntervalStart),
			keyIntervalMax:   seconds(s.Reconnect.IntervalMax),
			keyMaxElapsed:    seconds(s.Reconnect.MaxElapsed),
		},
		keyMaxWorkers:         s.MaxWorkers,
		keyGracePeriod:        seconds(s.GracePeriod),
		keyHeartbeat:          seconds(s.Heartbeat),
		keyParentCallsTracked: s.ParentCallsTracked,
		keySerializer:         s.Serializer,
		keyLogLevel:           strings.ToLower(s.LogLevel.String()),
		keyTracing: map[string]any{
			keyExporter:     s.Tracing.Exporter,
			keyEndpoint:     s.Tracing.Endpoint,
			keyProtocol:     s.Tracing.Protocol,
			keySamplerRatio: s.Tracing.SamplerRatio,
		},
		keyMetrics:        map[string]any{keyAddress: s.Metrics.Address},
		keyHealth:         map[string]any{keyAddress: s.Health.Address},
		keyMaxMessageSize: s.MaxMessageSize,
		keyRPCMaxInFlight: s.RPCMaxInFlight,
		keyEvents: map[string]any{
			keyMaxRetries:     s.Events.MaxRetries,
			keyPublishTimeout: seconds(s.Events.PublishTimeout),
		},
	}
}

// Validate reports the first setting out of range, naming its key and the expected form, or nil.
func (s Settings) Validate() error {
	if err := validateAMQPURI(s.AMQPURI); err != nil {
		return err
	}
	if err := s.RPCRetryPolicy.Validate(); err != nil {
		return err
	}
	if err := s.Reconnect.Validate(); err != nil {
		return err
	}
	if err := s.Tracing.Validate(); err != nil {
		return err
	}
	if err := s.Metrics.Validate(); err != nil {
		return err
	}
	if err := s.Health.Validate(); err != nil {
		return err
	}
	if err := s.Events.Validate(); err != nil {
		return err
	}
	if s.Serializer != DefaultSerializer {
		return fmt.Errorf("config %s: only %s is supported, got %q", keySerializer, wantSerializer, s.Serializer)
	}
	if s.MaxWorkers > maxPrefetch {
		return fmt.Errorf("config %s: want at most %d (AMQP's prefetch limit), got %d", keyMaxWorkers, maxPrefetch, s.MaxWorkers)
	}
	return firstInvalid([]check{
		{s.RPCExchange == "", keyRPCExchange, wantExchange, `""`},
		{s.RPCTimeout <= 0, keyRPCTimeout, wantSecondsAbove, secondsText(s.RPCTimeout)},
		{s.MaxWorkers < 1, keyMaxWorkers, wantWorkers, strconv.Itoa(s.MaxWorkers)},
		{s.GracePeriod < 0, keyGracePeriod, wantSeconds, secondsText(s.GracePeriod)},
		{s.Heartbeat < 0, keyHeartbeat, wantSeconds, secondsText(s.Heartbeat)},
		{s.ParentCallsTracked < 0, keyParentCallsTracked, wantCount, strconv.Itoa(s.ParentCallsTracked)},
		{s.MaxMessageSize <= 0, keyMaxMessageSize, wantBytes, strconv.FormatInt(s.MaxMessageSize, 10)},
		{s.RPCMaxInFlight < 1, keyRPCMaxInFlight, wantInFlight, strconv.Itoa(s.RPCMaxInFlight)},
	})
}

// Validate reports the first field of RPC_RETRY_POLICY out of range, or nil.
func (p RetryPolicy) Validate() error {
	return firstInvalid([]check{
		{p.MaxRetries < 0, keyRetryPolicy + "." + keyMaxRetries, wantCount, strconv.Itoa(p.MaxRetries)},
		{p.IntervalStart < 0, keyRetryPolicy + "." + keyIntervalStart, wantSeconds, secondsText(p.IntervalStart)},
		{p.IntervalStep < 0, keyRetryPolicy + "." + keyIntervalStep, wantSeconds, secondsText(p.IntervalStep)},
		{p.IntervalMax < 0, keyRetryPolicy + "." + keyIntervalMax, wantSeconds, secondsText(p.IntervalMax)},
	})
}

// Validate reports the first field of RECONNECT out of range, or nil.
func (p ReconnectPolicy) Validate() error {
	return firstInvalid([]check{
		{p.IntervalStart <= 0, keyReconnect + "." + keyIntervalStart, wantSecondsAbove, secondsText(p.IntervalStart)},
		{p.IntervalMax < p.IntervalStart, keyReconnect + "." + keyIntervalMax,
			"seconds >= INTERVAL_START (" + secondsText(p.IntervalStart) + ")", secondsText(p.IntervalMax)},
		{p.MaxElapsed < 0, keyReconnect + "." + keyMaxElapsed, wantSeconds + " (0 = forever)", secondsText(p.MaxElapsed)},
	})
}

// Validate reports the first field of TRACING out of range, or nil. The endpoint matters only to otlp.
func (t TracingSettings) Validate() error {
	if err := firstInvalid([]check{
		{!slices.Contains([]string{"otlp", "console", "none"}, t.Exporter), keyTracing + "." + keyExporter, wantExporter,
			strconv.Quote(t.Exporter)},
		{t.Protocol != "http/protobuf" && t.Protocol != "grpc", keyTracing + "." + keyProtocol, wantProtocol,
			strconv.Quote(t.Protocol)},
		{!(t.SamplerRatio >= 0 && t.SamplerRatio <= 1), keyTracing + "." + keySamplerRatio, wantRatio,
			strconv.FormatFloat(t.SamplerRatio, 'f', -1, 64)},
	}); err != nil || t.Exporter != "otlp" {
		return err
	}
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // the wrapper repeats the URL, any password included
		}
		return fmt.Errorf("config %s.%s: want %s: %v", keyTracing, keyEndpoint, wantEndpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("config %s.%s: want %s, got %q", keyTracing, keyEndpoint, wantEndpoint, u.Redacted())
	}
	return nil
}

// Validate reports an ADDRESS that is neither "" nor host:port with a numeric port, or nil.
func (m MetricsSettings) Validate() error {
	return validateAddress(keyMetrics+"."+keyAddress, m.Address)
}

// Validate reports an ADDRESS that is neither "" nor host:port with a numeric port, or nil.
func (h HealthSettings) Validate() error { return validateAddress(keyHealth+"."+keyAddress, h.Address) }

// validateAddress checks that address, the value of key, is "" or host:port with a numeric port.
func validateAddress(key, address string) error {
	if address == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(address)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("config %s: want %s, got %q", key, wantHostPort, address)
	}
	return nil
}

// Validate reports the first field of EVENTS out of range, or nil.
func (e EventsSettings) Validate() error {
	return firstInvalid([]check{
		{e.MaxRetries < 0, keyEvents + "." + keyMaxRetries, wantCount, strconv.Itoa(e.MaxRetries)},
		{e.PublishTimeout <= 0, keyEvents + "." + keyPublishTimeout, wantSecondsAbove, secondsText(e.PublishTimeout)},
	})
}

// check is one range rule of Validate: when bad, key wants want but holds got.
type check struct {
	bad            bool
	key, want, got string
}

func firstInvalid(checks []check) error {
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("config %s: want %s, got %s", c.key, c.want, c.got)
		}
	}
	return nil
}

// validateAMQPURI checks the broker URL without ever echoing its password.
func validateAMQPURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // the wrapper repeats the URL, password included
		}
		return fmt.Errorf("config %s: want %s: %v", keyAMQPURI, wantAMQPURI, err)
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" || u.Opaque != "" {
		return fmt.Errorf("config %s: want %s, got %q", keyAMQPURI, wantAMQPURI, u.Redacted())
	}
	return nil
}
