package config

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hypha-go/hypha/internal/redact"
)

// Defaults of Hypha's keys: what a service gets for a key that config.yaml, the environment and the
// overrides all leave out; DefaultSettings gathers them for users. The values match the defaults of
// the rpc, events and transport/amqp packages; they are written out here so that reading config links
// none of those packages.
const (
	defaultAMQPURI                = "amqp://guest:guest@localhost:5672/" // AMQP_URI
	defaultRPCExchange            = "nameko-rpc"                         // RPC_EXCHANGE, shared with nameko
	defaultRPCTimeout             = 30 * time.Second                     // RPC_TIMEOUT
	defaultRPCMaxRetries          = 3                                    // RPC_RETRY_POLICY.MAX_RETRIES
	defaultRPCRetryIntervalStart  = 100 * time.Millisecond               // RPC_RETRY_POLICY.INTERVAL_START
	defaultRPCRetryIntervalStep   = 200 * time.Millisecond               // RPC_RETRY_POLICY.INTERVAL_STEP
	defaultRPCRetryIntervalMax    = time.Second                          // RPC_RETRY_POLICY.INTERVAL_MAX
	defaultReconnectIntervalStart = 100 * time.Millisecond               // RECONNECT.INTERVAL_START
	defaultReconnectIntervalMax   = 5 * time.Second                      // RECONNECT.INTERVAL_MAX
	defaultReconnectMaxElapsed    = time.Duration(0)                     // RECONNECT.MAX_ELAPSED: retry forever
	defaultMaxWorkers             = 10                                   // MAX_WORKERS, also the prefetch count
	defaultGracePeriod            = 10 * time.Second                     // GRACE_PERIOD
	defaultHeartbeat              = 60 * time.Second                     // HEARTBEAT
	defaultParentCallsTracked     = 10                                   // PARENT_CALLS_TRACKED
	defaultSerializer             = "json"                               // SERIALIZER, the only one supported
	defaultLogLevel               = slog.LevelInfo                       // LOG_LEVEL
	defaultLogFormat              = "text"                               // LOG_FORMAT: slog's text handler
	defaultTracingExporter        = "none"                               // TRACING.EXPORTER: traces off
	defaultTracingEndpoint        = "http://localhost:4318"              // TRACING.ENDPOINT: a local collector, OTLP/HTTP
	defaultTracingProtocol        = "http/protobuf"                      // TRACING.PROTOCOL
	defaultTracingSamplerRatio    = 1.0                                  // TRACING.SAMPLER_RATIO: every trace
	defaultMetricsAddress         = ""                                   // METRICS.ADDRESS: no /metrics endpoint
	defaultHealthAddress          = ""                                   // HEALTH.ADDRESS: the same as METRICS.ADDRESS
	defaultHTTPAddress            = ""                                   // HTTP.ADDRESS: no HTTP entrypoints served
	defaultHTTPReadHeaderTimeout  = 5 * time.Second                      // HTTP.READ_HEADER_TIMEOUT
	defaultHTTPReadTimeout        = 30 * time.Second                     // HTTP.READ_TIMEOUT: headers and body
	defaultHTTPWriteTimeout       = 30 * time.Second                     // HTTP.WRITE_TIMEOUT
	defaultHTTPIdleTimeout        = 60 * time.Second                     // HTTP.IDLE_TIMEOUT: an idle keep-alive connection
	defaultHTTPMaxHeaderBytes     = 64 << 10                             // HTTP.MAX_HEADER_BYTES: 64 KiB
	defaultHTTPMaxBodySize        = 8 << 20                              // HTTP.MAX_BODY_SIZE: 8 MiB
	defaultHTTPMaxConnections     = 1024                                 // HTTP.MAX_CONNECTIONS, per listener
	defaultMaxMessageSize         = 8 << 20                              // MAX_MESSAGE_SIZE: 8 MiB
	defaultMaxInflightBytes       = 8 << 20                              // MAX_INFLIGHT_BYTES: 8 MiB, one message of the default MAX_MESSAGE_SIZE
	defaultRPCMaxInFlight         = 65536                                // RPC_MAX_IN_FLIGHT
	defaultRedactUnexpectedErrors = false                                // REDACT_UNEXPECTED_ERRORS: callers see the error
	defaultRPCPersistent          = true                                 // RPC_PERSISTENT: requests survive a broker restart, as nameko's
	defaultRPCReplyKeyPrefix      = ""                                   // RPC_REPLY_KEY_PREFIX: reply keys are bare uuids, as nameko's
	defaultRPCResend              = true                                 // RPC_RESEND: a request lost with the connection is sent again, as nameko's
	defaultEventMaxRetries        = 3                                    // EVENTS.MAX_RETRIES
	defaultEventPublishTimeout    = 30 * time.Second                     // EVENTS.PUBLISH_TIMEOUT
	defaultEventHandlerTimeout    = 60 * time.Second                     // EVENTS.HANDLER_TIMEOUT
	defaultEventRetryInitial      = time.Second                          // EVENTS.RETRY_DELAY.INITIAL
	defaultEventRetryMultiplier   = 2.0                                  // EVENTS.RETRY_DELAY.MULTIPLIER
	defaultEventRetryMax          = 60 * time.Second                     // EVENTS.RETRY_DELAY.MAX
	defaultQueueType              = "classic"                            // QUEUE_TYPE: RabbitMQ's default, as nameko's
	defaultQueueDeliveryLimit     = 20                                   // QUEUE_DELIVERY_LIMIT: quorum queues' x-delivery-limit
	defaultCertReqs               = "required"                           // AMQP_SSL.CERT_REQS: verify the broker's certificate
)

// maxPrefetch bounds MAX_WORKERS: it becomes basic.qos's prefetch-count, a 16-bit field in AMQP 0-9-1.
const maxPrefetch = 65535

// maxParentCallsTracked is the largest PARENT_CALLS_TRACKED: the call-id
// stack keeps PARENT_CALLS_TRACKED+1 entries, and a message may carry at
// most contextdata.MaxCallIDs (64) of them.
const maxParentCallsTracked = 63

// The expected form of each kind of value, shared by the type checks at load and by Validate.
const (
	wantAMQPURI      = "an amqp://, amqps:// or memory:// URL"
	wantExchange     = "a non-empty exchange name"
	wantSecondsAbove = "seconds > 0"
	wantSeconds      = "seconds >= 0"
	wantCount        = "a whole number >= 0"
	wantWorkers      = "a whole number >= 1"
	wantSerializer   = `"json"`
	wantLogLevel     = "debug, info, warn or error"
	wantLogFormat    = "text or json"
	wantExporter     = "otlp, console or none"
	wantEndpoint     = "an http:// or https:// URL"
	wantProtocol     = "http/protobuf or grpc"
	wantRatio        = "a number from 0 to 1"
	wantHostPort     = "host:port"
	wantBytes        = "a whole number of bytes > 0"
	wantInFlight     = "a whole number >= 1"
	wantBool         = "true or false"
	wantMultiplier   = "a number >= 1"
	wantQueueType    = "classic or quorum"
	wantLimit        = "a whole number >= 1"
	wantFile         = "a file path, or empty"
	wantCertReqs     = "required, optional or none (2, 1 or 0)"
	wantLoginMethod  = "PLAIN, AMQPLAIN, EXTERNAL, or empty"
	wantReplyPrefix  = `empty, or two or more dot-separated words of letters, digits, '_' and '-' not starting with "amq.", ` +
		`such as "reply.web" (at most 218 bytes)`
)

// Settings are Hypha's own keys of config.yaml, typed and validated. Durations are written in
// config.yaml as seconds (fractions allowed). The koanf tags name the keys.
type Settings struct {
	AMQPURI                string          `koanf:"AMQP_URI"`                 // the broker, an amqp://, amqps:// or memory:// URL; a cluster's nodes comma-separated (a YAML list in the file)
	RPCExchange            string          `koanf:"RPC_EXCHANGE"`             // (nameko: rpc_exchange) the RPC exchange
	RPCTimeout             time.Duration   `koanf:"RPC_TIMEOUT"`              // a call's deadline when its context has none sooner; > 0
	RPCRetryPolicy         RetryPolicy     `koanf:"RPC_RETRY_POLICY"`         // retries of a failed publish
	Reconnect              ReconnectPolicy `koanf:"RECONNECT"`                // backoff after losing the broker
	MaxWorkers             int             `koanf:"MAX_WORKERS"`              // (max_workers) concurrent workers per service = prefetch
	GracePeriod            time.Duration   `koanf:"GRACE_PERIOD"`             // time for in-flight work to finish on stop; >= 0
	Heartbeat              time.Duration   `koanf:"HEARTBEAT"`                // AMQP heartbeat interval; 0 turns heartbeats off
	ParentCallsTracked     int             `koanf:"PARENT_CALLS_TRACKED"`     // (parent_calls_tracked) call_id_stack keeps this many parents
	Serializer             string          `koanf:"SERIALIZER"`               // (serializer) only "json"
	LogLevel               slog.Level      `koanf:"LOG_LEVEL"`                // debug, info, warn (or warning) or error
	LogFormat              string          `koanf:"LOG_FORMAT"`               // "text" or "json" (read case-insensitively, kept lower-case)
	Tracing                TracingSettings `koanf:"TRACING"`                  // OpenTelemetry traces
	Metrics                MetricsSettings `koanf:"METRICS"`                  // the Prometheus /metrics endpoint
	Health                 HealthSettings  `koanf:"HEALTH"`                   // the /healthz and /readyz endpoints
	HTTP                   HTTPSettings    `koanf:"HTTP"`                     // the services' HTTP entrypoints
	MaxMessageSize         int64           `koanf:"MAX_MESSAGE_SIZE"`         // the largest message body sent or received, in bytes; > 0
	MaxInflightBytes       int64           `koanf:"MAX_INFLIGHT_BYTES"`       // bytes of messages the process's workers decode and run at once; > 0 (see docs/limits.md)
	RPCMaxInFlight         int             `koanf:"RPC_MAX_IN_FLIGHT"`        // calls one client may wait on at once; >= 1
	RedactUnexpectedErrors bool            `koanf:"REDACT_UNEXPECTED_ERRORS"` // send callers an opaque error for unexpected errors
	RPCPersistent          bool            `koanf:"RPC_PERSISTENT"`           // false: send requests, and so their replies, transient
	RPCReplyKeyPrefix      string          `koanf:"RPC_REPLY_KEY_PREFIX"`     // "": reply keys are bare uuids (nameko's); else "<prefix>.<uuid>", for topic permissions
	RPCResend              bool            `koanf:"RPC_RESEND"`               // false: send a request lost with the connection again only for idempotent calls
	Events                 EventsSettings  `koanf:"EVENTS"`                   // event dispatch and handling
	QueueType              string          `koanf:"QUEUE_TYPE"`               // "classic" or "quorum": the type of the durable queues Hypha declares
	QueueDeliveryLimit     int             `koanf:"QUEUE_DELIVERY_LIMIT"`     // quorum queues' x-delivery-limit; >= 1
	AMQPSSL                SSLSettings     `koanf:"AMQP_SSL"`                 // (amqp_ssl) TLS for amqps:// URIs
	LoginMethod            string          `koanf:"LOGIN_METHOD"`             // (login_method) PLAIN, AMQPLAIN or EXTERNAL; "" = the URI's auth_mechanism, else PLAIN
}

// SSLSettings are nameko's AMQP_SSL keys: the files TLS uses on amqps:// connections. Empty files mean
// the URI's cacertfile, certfile and keyfile, if any, and the system's roots.
type SSLSettings struct {
	CACerts  string `koanf:"CA_CERTS"`  // (ca_certs) PEM file of the CAs to trust for the broker's certificate
	CertFile string `koanf:"CERTFILE"`  // (certfile) PEM file of the client certificate, for EXTERNAL logins or brokers that ask
	KeyFile  string `koanf:"KEYFILE"`   // (keyfile) PEM file of the client certificate's private key
	CertReqs string `koanf:"CERT_REQS"` // (cert_reqs) "required" (or 2, ssl.CERT_REQUIRED) or "optional" (1): verify the broker; "none" (0): do not
}

// TracingSettings choose where OpenTelemetry traces go. config.yaml takes their defaults from the
// standard OTEL_TRACES_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_PROTOCOL.
type TracingSettings struct {
	Exporter     string  `koanf:"EXPORTER"`      // "otlp", "console" or "none" (read case-insensitively, kept lower-case)
	Endpoint     string  `koanf:"ENDPOINT"`      // the collector, an http:// or https:// URL; checked only for otlp
	Protocol     string  `koanf:"PROTOCOL"`      // "http/protobuf" or "grpc"
	SamplerRatio float64 `koanf:"SAMPLER_RATIO"` // the share of traces kept, 0 to 1
}

// MetricsSettings place the Prometheus /metrics endpoint.
type MetricsSettings struct {
	Address string `koanf:"ADDRESS"` // host:port to listen on, numeric port; "" (or null) = no endpoint
}

// HealthSettings place the /healthz (alive) and /readyz (ready for work) endpoints.
type HealthSettings struct {
	Address string `koanf:"ADDRESS"` // host:port, numeric port; "" (or null) = METRICS.ADDRESS, both "" = no endpoints
}

// HTTPSettings place the server of the services' HTTP entrypoints (httpentry), one per process, and
// bound every HTTP listener of the process (the routes', /metrics and the probes').
type HTTPSettings struct {
	Address           string        `koanf:"ADDRESS"`             // host:port, numeric port; "" (or null) = HTTP entrypoints are not served
	ReadHeaderTimeout time.Duration `koanf:"READ_HEADER_TIMEOUT"` // the longest to read a request's headers; > 0
	ReadTimeout       time.Duration `koanf:"READ_TIMEOUT"`        // the longest to read a whole request, headers and body; > 0
	WriteTimeout      time.Duration `koanf:"WRITE_TIMEOUT"`       // the longest to write a response, from its first byte; > 0
	IdleTimeout       time.Duration `koanf:"IDLE_TIMEOUT"`        // an idle keep-alive connection is closed after this; > 0
	MaxHeaderBytes    int           `koanf:"MAX_HEADER_BYTES"`    // the largest request line and headers, in bytes; > 0
	MaxBodySize       int64         `koanf:"MAX_BODY_SIZE"`       // the largest request body of a route, in bytes; > 0
	MaxConnections    int           `koanf:"MAX_CONNECTIONS"`     // open connections per listener; more wait to be accepted; >= 1
}

// EventsSettings tune event dispatch and handling.
type EventsSettings struct {
	// MAX_RETRIES (max_retries): how many times a failing event handler's event is retried (when the
	// handler asks for requeue on error) before it is dead-lettered; >= 0.
	MaxRetries int `koanf:"MAX_RETRIES"`
	// PUBLISH_TIMEOUT: how long a Dispatch may wait for the broker (reconnects, confirms); > 0.
	PublishTimeout time.Duration `koanf:"PUBLISH_TIMEOUT"`
	// HANDLER_TIMEOUT: an event handler's deadline; > 0.
	HandlerTimeout time.Duration `koanf:"HANDLER_TIMEOUT"`
	// RETRY_DELAY: the waits between the retries of a handler that asks for requeue on error.
	RetryDelay RetryDelay `koanf:"RETRY_DELAY"`
	// NAMEKO_QUEUES: declare the handlers' queues exactly as nameko does, without a dead-letter
	// exchange, for a fleet where nameko services consume them too; false by default.
	NamekoQueues bool `koanf:"NAMEKO_QUEUES"`
}

// RetryDelay is an exponential delay between retries: Initial before the first, then Multiplier
// times the previous one, at most Max.
type RetryDelay struct {
	Initial    time.Duration `koanf:"INITIAL"`    // > 0
	Multiplier float64       `koanf:"MULTIPLIER"` // >= 1
	Max        time.Duration `koanf:"MAX"`        // >= Initial
}

// RetryPolicy is kombu's linear retry policy for publishing: after the n-th failure wait
// IntervalStart + (n-1)*IntervalStep, at most IntervalMax, and give up after MaxRetries retries.
// It converts to transport.RetryPolicy.
type RetryPolicy struct {
	MaxRetries    int           `koanf:"MAX_RETRIES"`    // (max_retries); 0 means no retry
	IntervalStart time.Duration `koanf:"INTERVAL_START"` // (interval_start)
	IntervalStep  time.Duration `koanf:"INTERVAL_STEP"`  // (interval_step)
	IntervalMax   time.Duration `koanf:"INTERVAL_MAX"`   // (interval_max)
}

// ReconnectPolicy is the exponential, jittered backoff used to reach the broker again: waits grow from
// IntervalStart to IntervalMax, and stop after MaxElapsed in total, or never when MaxElapsed is 0.
// It converts to transport.ReconnectPolicy.
type ReconnectPolicy struct {
	IntervalStart time.Duration `koanf:"INTERVAL_START"` // > 0, or the backoff could never grow
	IntervalMax   time.Duration `koanf:"INTERVAL_MAX"`   // >= IntervalStart
	MaxElapsed    time.Duration `koanf:"MAX_ELAPSED"`    // 0 = retry forever
}

// DefaultSettings returns the settings a service runs with when config.yaml sets nothing: the one
// place to read Hypha's defaults (as the shipped config.yaml writes them out).
func DefaultSettings() Settings {
	return Settings{
		AMQPURI:     defaultAMQPURI,
		RPCExchange: defaultRPCExchange,
		RPCTimeout:  defaultRPCTimeout,
		RPCRetryPolicy: RetryPolicy{
			MaxRetries:    defaultRPCMaxRetries,
			IntervalStart: defaultRPCRetryIntervalStart,
			IntervalStep:  defaultRPCRetryIntervalStep,
			IntervalMax:   defaultRPCRetryIntervalMax,
		},
		Reconnect: ReconnectPolicy{
			IntervalStart: defaultReconnectIntervalStart,
			IntervalMax:   defaultReconnectIntervalMax,
			MaxElapsed:    defaultReconnectMaxElapsed,
		},
		MaxWorkers:         defaultMaxWorkers,
		GracePeriod:        defaultGracePeriod,
		Heartbeat:          defaultHeartbeat,
		ParentCallsTracked: defaultParentCallsTracked,
		Serializer:         defaultSerializer,
		LogLevel:           defaultLogLevel,
		LogFormat:          defaultLogFormat,
		Tracing: TracingSettings{
			Exporter:     defaultTracingExporter,
			Endpoint:     defaultTracingEndpoint,
			Protocol:     defaultTracingProtocol,
			SamplerRatio: defaultTracingSamplerRatio,
		},
		Metrics:                MetricsSettings{Address: defaultMetricsAddress},
		Health:                 HealthSettings{Address: defaultHealthAddress},
		HTTP:                   defaultHTTP(),
		MaxMessageSize:         defaultMaxMessageSize,
		MaxInflightBytes:       defaultMaxInflightBytes,
		RPCMaxInFlight:         defaultRPCMaxInFlight,
		RedactUnexpectedErrors: defaultRedactUnexpectedErrors,
		RPCPersistent:          defaultRPCPersistent,
		RPCReplyKeyPrefix:      defaultRPCReplyKeyPrefix,
		RPCResend:              defaultRPCResend,
		QueueType:              defaultQueueType,
		QueueDeliveryLimit:     defaultQueueDeliveryLimit,
		AMQPSSL:                SSLSettings{CertReqs: defaultCertReqs},
		Events: EventsSettings{
			MaxRetries:     defaultEventMaxRetries,
			PublishTimeout: defaultEventPublishTimeout,
			HandlerTimeout: defaultEventHandlerTimeout,
			RetryDelay: RetryDelay{
				Initial:    defaultEventRetryInitial,
				Multiplier: defaultEventRetryMultiplier,
				Max:        defaultEventRetryMax,
			},
		},
	}
}

// defaultHTTP is HTTP's defaults.
func defaultHTTP() HTTPSettings {
	return HTTPSettings{
		Address:           defaultHTTPAddress,
		ReadHeaderTimeout: defaultHTTPReadHeaderTimeout,
		ReadTimeout:       defaultHTTPReadTimeout,
		WriteTimeout:      defaultHTTPWriteTimeout,
		IdleTimeout:       defaultHTTPIdleTimeout,
		MaxHeaderBytes:    defaultHTTPMaxHeaderBytes,
		MaxBodySize:       defaultHTTPMaxBodySize,
		MaxConnections:    defaultHTTPMaxConnections,
	}
}

// Validate reports the first setting out of range, naming its key and the expected form, or nil.
func (s Settings) Validate() error {
	if err := validateAMQPURI(s.AMQPURI); err != nil {
		return err
	}
	for _, v := range []interface{ validate() error }{s.RPCRetryPolicy, s.Reconnect, s.Tracing, s.Metrics, s.Health, s.HTTP, s.Events, s.AMQPSSL} {
		if err := v.validate(); err != nil {
			return err
		}
	}
	if s.Serializer != defaultSerializer {
		return fmt.Errorf("config SERIALIZER: only %s is supported, got %q", wantSerializer, s.Serializer)
	}
	if s.ParentCallsTracked > maxParentCallsTracked {
		return fmt.Errorf("config PARENT_CALLS_TRACKED: want at most %d (the call-id stack's bound, contextdata.MaxCallIDs, less one), got %d",
			maxParentCallsTracked, s.ParentCallsTracked)
	}
	if s.MaxWorkers > maxPrefetch {
		return fmt.Errorf("config MAX_WORKERS: want at most %d (AMQP's prefetch limit), got %d", maxPrefetch, s.MaxWorkers)
	}
	return firstInvalid([]check{
		{s.RPCExchange == "", "RPC_EXCHANGE", wantExchange, `""`},
		{s.RPCTimeout <= 0, "RPC_TIMEOUT", wantSecondsAbove, secondsText(s.RPCTimeout)},
		{s.MaxWorkers < 1, "MAX_WORKERS", wantWorkers, strconv.Itoa(s.MaxWorkers)},
		{s.GracePeriod < 0, "GRACE_PERIOD", wantSeconds, secondsText(s.GracePeriod)},
		{s.Heartbeat < 0, "HEARTBEAT", wantSeconds, secondsText(s.Heartbeat)},
		{s.ParentCallsTracked < 0, "PARENT_CALLS_TRACKED", wantCount, strconv.Itoa(s.ParentCallsTracked)},
		{s.LogFormat != "text" && s.LogFormat != "json", "LOG_FORMAT", wantLogFormat, strconv.Quote(s.LogFormat)},
		{s.MaxMessageSize <= 0, "MAX_MESSAGE_SIZE", wantBytes, strconv.FormatInt(s.MaxMessageSize, 10)},
		{s.MaxInflightBytes <= 0, "MAX_INFLIGHT_BYTES", wantBytes, strconv.FormatInt(s.MaxInflightBytes, 10)},
		{s.RPCMaxInFlight < 1, "RPC_MAX_IN_FLIGHT", wantInFlight, strconv.Itoa(s.RPCMaxInFlight)},
		{!validReplyKeyPrefix(s.RPCReplyKeyPrefix), "RPC_REPLY_KEY_PREFIX", wantReplyPrefix, strconv.Quote(s.RPCReplyKeyPrefix)},
		{s.QueueType != "classic" && s.QueueType != "quorum", "QUEUE_TYPE", wantQueueType, strconv.Quote(s.QueueType)},
		{s.QueueDeliveryLimit < 1, "QUEUE_DELIVERY_LIMIT", wantLimit, strconv.Itoa(s.QueueDeliveryLimit)},
		{!slices.Contains([]string{"", "PLAIN", "AMQPLAIN", "EXTERNAL"}, s.LoginMethod), "LOGIN_METHOD", wantLoginMethod,
			strconv.Quote(s.LoginMethod)},
		{s.LoginMethod == "EXTERNAL" && s.AMQPSSL.CertFile == "" && !strings.Contains(s.AMQPURI, "certfile="),
			"LOGIN_METHOD", "EXTERNAL with a client certificate (AMQP_SSL.CERTFILE and KEYFILE)", `"EXTERNAL" and no certificate`},
	})
}

// validate reports a CERT_REQS that is not one of the three, or a CERTFILE without its KEYFILE (or the
// reverse), or nil. The files are read when the app starts.
func (t SSLSettings) validate() error {
	return firstInvalid([]check{
		{!slices.Contains([]string{"required", "optional", "none"}, t.CertReqs), "AMQP_SSL.CERT_REQS", wantCertReqs,
			strconv.Quote(t.CertReqs)},
		{t.CertFile != "" && t.KeyFile == "", "AMQP_SSL.KEYFILE", "the key of AMQP_SSL.CERTFILE", `""`},
		{t.KeyFile != "" && t.CertFile == "", "AMQP_SSL.CERTFILE", "the certificate of AMQP_SSL.KEYFILE", `""`},
	})
}

// validate reports the first field of RPC_RETRY_POLICY out of range, or nil.
func (p RetryPolicy) validate() error {
	return firstInvalid([]check{
		{p.MaxRetries < 0, "RPC_RETRY_POLICY.MAX_RETRIES", wantCount, strconv.Itoa(p.MaxRetries)},
		{p.IntervalStart < 0, "RPC_RETRY_POLICY.INTERVAL_START", wantSeconds, secondsText(p.IntervalStart)},
		{p.IntervalStep < 0, "RPC_RETRY_POLICY.INTERVAL_STEP", wantSeconds, secondsText(p.IntervalStep)},
		{p.IntervalMax < 0, "RPC_RETRY_POLICY.INTERVAL_MAX", wantSeconds, secondsText(p.IntervalMax)},
	})
}

// validate reports the first field of RECONNECT out of range, or nil.
func (p ReconnectPolicy) validate() error {
	return firstInvalid([]check{
		{p.IntervalStart <= 0, "RECONNECT.INTERVAL_START", wantSecondsAbove, secondsText(p.IntervalStart)},
		{p.IntervalMax < p.IntervalStart, "RECONNECT.INTERVAL_MAX",
			"seconds >= INTERVAL_START (" + secondsText(p.IntervalStart) + ")", secondsText(p.IntervalMax)},
		{p.MaxElapsed < 0, "RECONNECT.MAX_ELAPSED", wantSeconds + " (0 = forever)", secondsText(p.MaxElapsed)},
	})
}

// validate reports the first field of TRACING out of range, or nil. The endpoint matters only to otlp.
func (t TracingSettings) validate() error {
	if err := firstInvalid([]check{
		{!slices.Contains([]string{"otlp", "console", "none"}, t.Exporter), "TRACING.EXPORTER", wantExporter,
			strconv.Quote(t.Exporter)},
		{t.Protocol != "http/protobuf" && t.Protocol != "grpc", "TRACING.PROTOCOL", wantProtocol,
			strconv.Quote(t.Protocol)},
		{!(t.SamplerRatio >= 0 && t.SamplerRatio <= 1), "TRACING.SAMPLER_RATIO", wantRatio,
			strconv.FormatFloat(t.SamplerRatio, 'f', -1, 64)},
	}); err != nil || t.Exporter != "otlp" {
		return err
	}
	u, err := url.Parse(t.Endpoint)
	if err != nil {
		return fmt.Errorf("config TRACING.ENDPOINT: want %s: %s", wantEndpoint, redact.ParseError(t.Endpoint, err))
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("config TRACING.ENDPOINT: want %s, got %q", wantEndpoint, redact.URI(t.Endpoint))
	}
	return nil
}

// validate reports an ADDRESS that is neither "" nor host:port with a numeric port, or nil.
func (m MetricsSettings) validate() error { return validateAddress("METRICS.ADDRESS", m.Address) }

// validate reports an ADDRESS that is neither "" nor host:port with a numeric port, or nil.
func (h HealthSettings) validate() error { return validateAddress("HEALTH.ADDRESS", h.Address) }

// validate reports an ADDRESS that is neither "" nor host:port with a numeric port, or the first
// bound out of range, or nil.
func (h HTTPSettings) validate() error {
	if err := validateAddress("HTTP.ADDRESS", h.Address); err != nil {
		return err
	}
	return firstInvalid([]check{
		{h.ReadHeaderTimeout <= 0, "HTTP.READ_HEADER_TIMEOUT", wantSecondsAbove, secondsText(h.ReadHeaderTimeout)},
		{h.ReadTimeout <= 0, "HTTP.READ_TIMEOUT", wantSecondsAbove, secondsText(h.ReadTimeout)},
		{h.WriteTimeout <= 0, "HTTP.WRITE_TIMEOUT", wantSecondsAbove, secondsText(h.WriteTimeout)},
		{h.IdleTimeout <= 0, "HTTP.IDLE_TIMEOUT", wantSecondsAbove, secondsText(h.IdleTimeout)},
		{h.MaxHeaderBytes <= 0, "HTTP.MAX_HEADER_BYTES", wantBytes, strconv.Itoa(h.MaxHeaderBytes)},
		{h.MaxBodySize <= 0, "HTTP.MAX_BODY_SIZE", wantBytes, strconv.FormatInt(h.MaxBodySize, 10)},
		{h.MaxConnections < 1, "HTTP.MAX_CONNECTIONS", wantLimit, strconv.Itoa(h.MaxConnections)},
	})
}

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

// validate reports the first field of EVENTS out of range, or nil.
func (e EventsSettings) validate() error {
	if err := firstInvalid([]check{
		{e.MaxRetries < 0, "EVENTS.MAX_RETRIES", wantCount, strconv.Itoa(e.MaxRetries)},
		{e.PublishTimeout <= 0, "EVENTS.PUBLISH_TIMEOUT", wantSecondsAbove, secondsText(e.PublishTimeout)},
		{e.HandlerTimeout <= 0, "EVENTS.HANDLER_TIMEOUT", wantSecondsAbove, secondsText(e.HandlerTimeout)},
	}); err != nil {
		return err
	}
	return e.RetryDelay.validate()
}

// validate reports the first field of EVENTS.RETRY_DELAY out of range, or nil.
func (d RetryDelay) validate() error {
	return firstInvalid([]check{
		{d.Initial <= 0, "EVENTS.RETRY_DELAY.INITIAL", wantSecondsAbove, secondsText(d.Initial)},
		{!(d.Multiplier >= 1), "EVENTS.RETRY_DELAY.MULTIPLIER", wantMultiplier, strconv.FormatFloat(d.Multiplier, 'f', -1, 64)},
		{d.Max < d.Initial, "EVENTS.RETRY_DELAY.MAX", "seconds >= INITIAL (" + secondsText(d.Initial) + ")", secondsText(d.Max)},
	})
}

// check is one range rule of Validate: when bad, key wants want but holds got.
// replyKeyPrefixForm is RPC_REPLY_KEY_PREFIX's form, as rpc.Config.ReplyKeyPrefix's: two or more words,
// so that reply keys "<prefix>.<uuid>" have three or more and never match a service's "<service>.*" binding.
var replyKeyPrefixForm = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`)

// validReplyKeyPrefix reports whether p is empty or a prefix rpc.Client takes: of replyKeyPrefixForm, not
// starting with the broker's "amq.", and short enough for "<p>.<uuid>" to fit AMQP's 255-byte routing keys.
func validReplyKeyPrefix(p string) bool {
	return p == "" || replyKeyPrefixForm.MatchString(p) && !strings.HasPrefix(p, "amq.") && len(p) <= 218
}

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

// validateAMQPURI checks the broker URL, or the comma-separated URLs of a cluster's nodes, without ever
// echoing a password.
func validateAMQPURI(uris string) error {
	list := strings.Split(uris, ",")
	for i, uri := range list {
		uri = strings.TrimSpace(uri)
		u, err := url.Parse(uri)
		if err != nil {
			return fmt.Errorf("config AMQP_URI: want %s: %s", wantAMQPURI, redact.ParseError(uri, err))
		}
		if u.Scheme != "amqp" && u.Scheme != "amqps" && u.Scheme != "memory" || u.Opaque != "" {
			return fmt.Errorf("config AMQP_URI: want %s, got %q", wantAMQPURI, redact.URI(uri))
		}
		if u.Scheme == "memory" && len(list) > 1 {
			return fmt.Errorf("config AMQP_URI: a list of URLs names a cluster's nodes, amqp:// or amqps:// only, got %q as URL %d",
				redact.URI(uri), i+1)
		}
	}
	return nil
}

func secondsText(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
