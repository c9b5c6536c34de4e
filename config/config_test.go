package config

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// isolateConfig runs the test in an empty directory with none of the variables config.yaml reads
// (HYPHA_*, AMQP_URI, AMQP_URI_FILE, QUEUE_TYPE, RPC_REPLY_KEY_PREFIX, OTEL_*, METRICS_ADDRESS, HEALTH_ADDRESS), so the developer's environment cannot leak into the result.
func isolateConfig(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix) || strings.HasPrefix(name, "OTEL_") || name == "AMQP_URI" || name == "AMQP_URI_FILE" || name == "QUEUE_TYPE" || name == "METRICS_ADDRESS" ||
			name == "RPC_REPLY_KEY_PREFIX" ||
			name == "HEALTH_ADDRESS" {
			t.Setenv(name, "") // restores the variable after the test
			os.Unsetenv(name)
		}
	}
	t.Chdir(t.TempDir())
}

func writeConfig(t *testing.T, name, text string) string {
	t.Helper()
	if err := os.WriteFile(name, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want it to contain %q", err, want)
	}
}

func TestPath(t *testing.T) {
	const missing = "--config needs a file path"
	tests := []struct {
		args []string
		want string
		err  string
	}{
		{nil, "", ""},
		{[]string{"serve", "-v"}, "", ""},
		{[]string{"--config", "a.yaml"}, "a.yaml", ""},
		{[]string{"--config=a.yaml", "-v"}, "a.yaml", ""},
		{[]string{"-config", "a.yaml"}, "a.yaml", ""},
		{[]string{"--config=a.yaml", "--config", "b.yaml"}, "b.yaml", ""},
		{[]string{"--configure", "x"}, "", ""},
		{[]string{"--", "--config", "a.yaml"}, "", ""},
		{[]string{"--config"}, "", missing},
		{[]string{"--config="}, "", missing},
		{[]string{"--config", "--verbose"}, "", missing},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := Path(tt.args)
			wantErr(t, err, tt.err)
			if got != tt.want {
				t.Fatalf("Path(%q) = %q, want %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestLoadConfigFindsFile(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string // file name -> MAX_WORKERS it sets
		path    string
		envFile string // $HYPHA_CONFIG
		want    int
		err     string
	}{
		{name: "no file means defaults", want: defaultMaxWorkers},
		{name: "./config.yaml", files: map[string]string{"config.yaml": "2"}, want: 2},
		{name: "HYPHA_CONFIG beats ./config.yaml", files: map[string]string{"config.yaml": "2", "env.yaml": "3"},
			envFile: "env.yaml", want: 3},
		{name: "path beats HYPHA_CONFIG", files: map[string]string{"env.yaml": "3", "arg.yaml": "4"},
			envFile: "env.yaml", path: "arg.yaml", want: 4},
		{name: "missing path", files: map[string]string{"config.yaml": "2"}, path: "nope.yaml",
			err: `config: file "nope.yaml" does not exist; check the path given with --config`},
		{name: "missing HYPHA_CONFIG", files: map[string]string{"config.yaml": "2"}, envFile: "gone.yaml",
			err: `config: file "gone.yaml" does not exist; fix or unset HYPHA_CONFIG`},
		{name: "empty file", files: map[string]string{"config.yaml": ""}, want: defaultMaxWorkers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			for name, workers := range tt.files {
				text := "MAX_WORKERS: " + workers + "\n"
				if workers == "" {
					text = "# nothing yet\n"
				}
				writeConfig(t, name, text)
			}
			if tt.envFile != "" {
				t.Setenv("HYPHA_CONFIG", tt.envFile)
			}
			c, err := Load(tt.path, nil)
			wantErr(t, err, tt.err)
			if err == nil && c.MaxWorkers != tt.want {
				t.Fatalf("MaxWorkers = %d, want %d", c.MaxWorkers, tt.want)
			}
		})
	}
}

func TestLoadConfigSubstitutes(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		key  string
		want any
		err  string
	}{
		{name: "default keeps its type", yaml: "MAX_WORKERS: ${W:7}", key: "max_workers", want: 7},
		{name: "variable keeps its type", yaml: "MAX_WORKERS: ${W:7}", env: map[string]string{"W": "4"}, key: "MAX_WORKERS", want: 4},
		{name: "bool", yaml: "FLAG: ${F:true}", key: "FLAG", want: true},
		{name: "float", yaml: "RATIO: ${R:0.5}", key: "RATIO", want: 0.5},
		{name: "null", yaml: "NOTHING: ${N:null}", key: "NOTHING", want: nil},
		{name: "empty default is null", yaml: "NOTHING: ${N:}", key: "NOTHING", want: nil},
		{name: "set but empty", yaml: "TEXT: x${N}y", env: map[string]string{"N": ""}, key: "TEXT", want: "xy"},
		{name: "plain text stays text", yaml: "NAME: ${N:calculator}", key: "NAME", want: "calculator"},
		{name: "timestamp stays text", yaml: "DAY: ${D:2001-12-14}", key: "DAY", want: "2001-12-14"},
		{name: "embedded stays text", yaml: "V: v${N:1}", key: "V", want: "v1"},
		{name: "two expressions stay text", yaml: "V: ${A:1}${B:2}", key: "V", want: "12"},
		{name: "several in one string", yaml: "URL: http://${HOST:localhost}:${PORT:80}/x", env: map[string]string{"PORT": "8080"},
			key: "URL", want: "http://localhost:8080/x"},
		{name: "explicit !!str stays text", yaml: "V: !!str ${N:5}", key: "V", want: "5"},
		{name: "alias sees the substituted anchor", yaml: "A: &w ${W:5}\nB: *w", key: "B", want: 5},
		{name: "quoted stays text", yaml: `V: "${N:5}"`, key: "V", want: "5"},
		{name: "nameko !env_var retypes", yaml: `V: !env_var "${N:5}"`, key: "V", want: 5},
		{name: "nameko !raw_env_var keeps text", yaml: `V: !raw_env_var ${N:5}`, key: "V", want: "5"},
		{name: "default holds colons", yaml: "AMQP_URI: ${AMQP_URI:amqp://u:p@h:5672/v}", key: "AMQP_URI", want: "amqp://u:p@h:5672/v"},
		{name: "variable beats default", yaml: "AMQP_URI: ${AMQP_URI:amqp://u:p@h:5672/v}", env: map[string]string{"AMQP_URI": "amqps://b/"},
			key: "AMQP_URI", want: "amqps://b/"},
		{name: "nested keys and lists", yaml: "MINE:\n  list:\n    - ${A:1}\n    - x${B:2}", key: "mine.list", want: []any{1, "x2"}},
		{name: "unset without default", yaml: "MINE:\n  dsn: ${DSN_FOR_TEST}",
			err: "config MINE.dsn: environment variable DSN_FOR_TEST is not set and ${DSN_FOR_TEST} has no default"},
		{name: "unset in a list", yaml: "L:\n  - a\n  - ${NOPE_FOR_TEST}", err: "config L[1]: environment variable NOPE_FOR_TEST"},
		{name: "nested expression", yaml: "V: ${A:${B}}", err: `config V: cannot read "${A:${B}"`},
		{name: "typed value is validated", yaml: "MAX_WORKERS: ${W:0}", err: "config MAX_WORKERS: want a whole number >= 1, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			setEnv(t, tt.env)
			c, err := Load(writeConfig(t, "c.yaml", tt.yaml+"\n"), nil)
			wantErr(t, err, tt.err)
			if err != nil {
				return
			}
			if got := c.Get(tt.key); !reflect.DeepEqual(got, tt.want) || !c.Exists(tt.key) {
				t.Fatalf("Get(%q) = %#v, want %#v", tt.key, got, tt.want)
			}
		})
	}
}

func TestLoadConfigKeysAreCaseInsensitive(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(Settings) bool
		err  string
	}{
		{name: "nameko spellings", yaml: "rpc_exchange: x\nmax_workers: 3\nparent_calls_tracked: 2\nserializer: json",
			want: func(s Settings) bool { return s.RPCExchange == "x" && s.MaxWorkers == 3 && s.ParentCallsTracked == 2 }},
		{name: "lower-case nested keys", yaml: "rpc_retry_policy:\n  MAX_retries: 7\nreconnect: {interval_max: 9}",
			want: func(s Settings) bool {
				return s.RPCRetryPolicy.MaxRetries == 7 && s.RPCRetryPolicy.IntervalMax == defaultRPCRetryIntervalMax &&
					s.Reconnect.IntervalMax == 9*time.Second
			}},
		{name: "both spellings, same value", yaml: "rpc_exchange: x\nRPC_EXCHANGE: x",
			want: func(s Settings) bool { return s.RPCExchange == "x" }},
		{name: "both spellings, different values", yaml: "rpc_exchange: x\nRPC_EXCHANGE: y",
			err: `config RPC_EXCHANGE: set twice with different values, as "RPC_EXCHANGE" and "rpc_exchange"; keep one`},
		{name: "same spelling twice", yaml: "A: 1\nA: 1", err: `config: parse "c.yaml": yaml: unmarshal errors:`},
		{name: "nested, different values", yaml: "RPC_RETRY_POLICY:\n  max_retries: 1\n  Max_Retries: 2",
			err: `config RPC_RETRY_POLICY.MAX_RETRIES: set twice with different values, as "Max_Retries" and "max_retries"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			c, err := Load(writeConfig(t, "c.yaml", tt.yaml+"\n"), nil)
			wantErr(t, err, tt.err)
			if err == nil && !tt.want(c.Settings) {
				t.Fatalf("unexpected settings %+v", c.Settings)
			}
		})
	}
}

func TestLoadConfigLayers(t *testing.T) {
	const file = "MAX_WORKERS: 2\nRPC_RETRY_POLICY:\n  max_retries: 1\n  interval_max: 3\nMINE:\n  name: from-file\n"
	tests := []struct {
		name      string
		env       map[string]string
		overrides map[string]any
		key       string
		want      any
	}{
		{name: "file beats defaults", key: "MAX_WORKERS", want: 2},
		{name: "env beats file", env: map[string]string{"HYPHA_MAX_WORKERS": "4"}, key: "MAX_WORKERS", want: 4},
		{name: "env nests with __", env: map[string]string{"HYPHA_RPC_RETRY_POLICY__MAX_RETRIES": "5"},
			key: "rpc_retry_policy.max_retries", want: 5},
		{name: "env leaves sibling keys", env: map[string]string{"HYPHA_RPC_RETRY_POLICY__MAX_RETRIES": "5"},
			key: "RPC_RETRY_POLICY.INTERVAL_MAX", want: 3},
		{name: "env values are typed", env: map[string]string{"HYPHA_MINE__ON": "true"}, key: "MINE.ON", want: true},
		{name: "env text stays text", env: map[string]string{"HYPHA_MINE__NAME": "from-env"}, key: "MINE.NAME", want: "from-env"},
		{name: "HYPHA_CONFIG is not a key", env: map[string]string{"HYPHA_CONFIG": "c.yaml"}, key: "CONFIG", want: nil},
		{name: "overrides beat env", env: map[string]string{"HYPHA_MAX_WORKERS": "4"}, overrides: map[string]any{"max_workers": 6},
			key: "MAX_WORKERS", want: 6},
		{name: "dotted overrides", overrides: map[string]any{"rpc_retry_policy.MAX_RETRIES": 8},
			key: "RPC_RETRY_POLICY.MAX_RETRIES", want: 8},
		{name: "nested overrides", overrides: map[string]any{"Mine": map[string]any{"Name": "code"}}, key: "mine.name", want: "code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			setEnv(t, tt.env)
			c, err := Load(writeConfig(t, "c.yaml", file), tt.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Get(tt.key); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Get(%q) = %#v, want %#v", tt.key, got, tt.want)
			}
		})
	}
}

func TestLoadConfigRejectsBadValues(t *testing.T) {
	tests := []struct {
		key   string
		value any
		err   string
	}{
		{"MAX_WORKERS", "ten", `config MAX_WORKERS: want a whole number >= 1, got "ten"`},
		{"MAX_WORKERS", 0, "config MAX_WORKERS: want a whole number >= 1, got 0"},
		{"MAX_WORKERS", 2.5, "config MAX_WORKERS: want a whole number >= 1, got 2.5"},
		{"MAX_WORKERS", nil, "config MAX_WORKERS: want a whole number >= 1, got null"},
		{"MAX_WORKERS", 70000, "config MAX_WORKERS: want at most 65535 (AMQP's prefetch limit), got 70000"},
		{"RPC_TIMEOUT", -1, "config RPC_TIMEOUT: want seconds > 0, got -1"},
		{"RPC_TIMEOUT", "soon", `config RPC_TIMEOUT: want seconds > 0, got "soon"`},
		{"RPC_TIMEOUT", math.Inf(1), "config RPC_TIMEOUT: want seconds > 0, got +Inf"},
		{"SERIALIZER", "pickle", `config SERIALIZER: only "json" is supported, got "pickle"`},
		{"LOG_LEVEL", "loud", `config LOG_LEVEL: want debug, info, warn or error, got "loud"`},
		{"AMQP_URI", "http://u:secret@host/", `config AMQP_URI: want an amqp://, amqps:// or memory:// URL, got "http://u:xxxxx@host/"`},
		{"AMQP_URI", "amqp://u:secret@host:port/", `config AMQP_URI: want an amqp://, amqps:// or memory:// URL: invalid port`},
		{"AMQP_URI", 5, "config AMQP_URI: want an amqp://, amqps:// or memory:// URL, got 5"},
		{"RPC_EXCHANGE", "", `config RPC_EXCHANGE: want a non-empty exchange name, got ""`},
		{"RPC_RETRY_POLICY", 5, "config RPC_RETRY_POLICY: want a mapping of MAX_RETRIES, INTERVAL_START, INTERVAL_STEP, INTERVAL_MAX, got 5"},
		{"rpc_retry_policy.max_retry", 5, "config RPC_RETRY_POLICY.MAX_RETRY: unknown key; RPC_RETRY_POLICY holds only MAX_RETRIES"},
		{"rpc_retry_policy.max_retries", -1, "config RPC_RETRY_POLICY.MAX_RETRIES: want a whole number >= 0, got -1"},
		{"rpc_retry_policy.interval_step", -0.5, "config RPC_RETRY_POLICY.INTERVAL_STEP: want seconds >= 0, got -0.5"},
		{"RECONNECT.INTERVAL_START", 0, "config RECONNECT.INTERVAL_START: want seconds > 0, got 0"},
		{"RECONNECT.INTERVAL_MAX", 0.05, "config RECONNECT.INTERVAL_MAX: want seconds >= INTERVAL_START (0.1), got 0.05"},
		{"RECONNECT.MAX_ELAPSED", -1, "config RECONNECT.MAX_ELAPSED: want seconds >= 0 (0 = forever), got -1"},
		{"GRACE_PERIOD", -1, "config GRACE_PERIOD: want seconds >= 0, got -1"},
		{"HEARTBEAT", true, "config HEARTBEAT: want seconds >= 0, got true"},
		{"PARENT_CALLS_TRACKED", -1, "config PARENT_CALLS_TRACKED: want a whole number >= 0, got -1"},
		{"PARENT_CALLS_TRACKED", 64, "config PARENT_CALLS_TRACKED: want at most 63 (the call-id stack's bound, contextdata.MaxCallIDs, less one), got 64"},
		{"TRACING", 5, "config TRACING: want a mapping of EXPORTER, ENDPOINT, PROTOCOL, SAMPLER_RATIO, got 5"},
		{"tracing.sampler", 0.5, "config TRACING.SAMPLER: unknown key; TRACING holds only EXPORTER, ENDPOINT, PROTOCOL, SAMPLER_RATIO"},
		{"TRACING.EXPORTER", "jaeger", `config TRACING.EXPORTER: want otlp, console or none, got "jaeger"`},
		{"TRACING.EXPORTER", "", `config TRACING.EXPORTER: want otlp, console or none, got ""`},
		{"TRACING.EXPORTER", nil, "config TRACING.EXPORTER: want otlp, console or none, got null"},
		{"TRACING.PROTOCOL", "http/json", `config TRACING.PROTOCOL: want http/protobuf or grpc, got "http/json"`},
		{"TRACING.SAMPLER_RATIO", 2, "config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got 2"},
		{"TRACING.SAMPLER_RATIO", -0.1, "config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got -0.1"},
		{"TRACING.SAMPLER_RATIO", math.NaN(), "config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got NaN"},
		{"TRACING.SAMPLER_RATIO", "half", `config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got "half"`},
		{"TRACING.SAMPLER_RATIO", true, "config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got true"},
		{"TRACING.ENDPOINT", 4318, "config TRACING.ENDPOINT: want an http:// or https:// URL, got 4318"},
		{"METRICS", "on", `config METRICS: want a mapping of ADDRESS, got "on"`},
		{"metrics.port", 9464, "config METRICS.PORT: unknown key; METRICS holds only ADDRESS"},
		{"METRICS.ADDRESS", "nope", `config METRICS.ADDRESS: want host:port, got "nope"`},
		{"METRICS.ADDRESS", "127.0.0.1:http", `config METRICS.ADDRESS: want host:port, got "127.0.0.1:http"`},
		{"METRICS.ADDRESS", "127.0.0.1:70000", `config METRICS.ADDRESS: want host:port, got "127.0.0.1:70000"`},
		{"METRICS.ADDRESS", "::1:9464", `config METRICS.ADDRESS: want host:port, got "::1:9464"`},
		{"METRICS.ADDRESS", 9464, "config METRICS.ADDRESS: want host:port, got 9464"},
		{"HEALTH", "on", `config HEALTH: want a mapping of ADDRESS, got "on"`},
		{"health.port", 8080, "config HEALTH.PORT: unknown key; HEALTH holds only ADDRESS"},
		{"HEALTH.ADDRESS", "nope", `config HEALTH.ADDRESS: want host:port, got "nope"`},
		{"HEALTH.ADDRESS", 8080, "config HEALTH.ADDRESS: want host:port, got 8080"},
		{"HTTP.READ_TIMEOUT", 0, "config HTTP.READ_TIMEOUT: want seconds > 0, got 0"},
		{"http.idle_timeout", "long", `config HTTP.IDLE_TIMEOUT: want seconds > 0, got "long"`},
		{"HTTP.MAX_BODY_SIZE", -1, "config HTTP.MAX_BODY_SIZE: want a whole number of bytes > 0, got -1"},
		{"HTTP.MAX_CONNECTIONS", 0, "config HTTP.MAX_CONNECTIONS: want a whole number >= 1, got 0"},
		{"MAX_MESSAGE_SIZE", 0, "config MAX_MESSAGE_SIZE: want a whole number of bytes > 0, got 0"},
		{"MAX_MESSAGE_SIZE", -1, "config MAX_MESSAGE_SIZE: want a whole number of bytes > 0, got -1"},
		{"MAX_MESSAGE_SIZE", 1.5, "config MAX_MESSAGE_SIZE: want a whole number of bytes > 0, got 1.5"},
		{"MAX_MESSAGE_SIZE", "8MiB", `config MAX_MESSAGE_SIZE: want a whole number of bytes > 0, got "8MiB"`},
		{"MAX_INFLIGHT_BYTES", 0, "config MAX_INFLIGHT_BYTES: want a whole number of bytes > 0, got 0"},
		{"max_inflight_bytes", "64MiB", `config MAX_INFLIGHT_BYTES: want a whole number of bytes > 0, got "64MiB"`},
		{"RPC_MAX_IN_FLIGHT", 0, "config RPC_MAX_IN_FLIGHT: want a whole number >= 1, got 0"},
		{"rpc_max_in_flight", "many", `config RPC_MAX_IN_FLIGHT: want a whole number >= 1, got "many"`},
		{"EVENTS", 3, "config EVENTS: want a mapping of MAX_RETRIES, PUBLISH_TIMEOUT, HANDLER_TIMEOUT, RETRY_DELAY, NAMEKO_QUEUES, got 3"},
		{"events.retries", 3, "config EVENTS.RETRIES: unknown key; EVENTS holds only MAX_RETRIES, PUBLISH_TIMEOUT, HANDLER_TIMEOUT, RETRY_DELAY, NAMEKO_QUEUES"},
		{"EVENTS.MAX_RETRIES", -1, "config EVENTS.MAX_RETRIES: want a whole number >= 0, got -1"},
		{"EVENTS.MAX_RETRIES", 1.5, "config EVENTS.MAX_RETRIES: want a whole number >= 0, got 1.5"},
		{"EVENTS.MAX_RETRIES", "many", `config EVENTS.MAX_RETRIES: want a whole number >= 0, got "many"`},
		{"EVENTS.MAX_RETRIES", nil, "config EVENTS.MAX_RETRIES: want a whole number >= 0, got null"},
		{"EVENTS.PUBLISH_TIMEOUT", 0, "config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got 0"},
		{"EVENTS.PUBLISH_TIMEOUT", -2.5, "config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got -2.5"},
		{"EVENTS.PUBLISH_TIMEOUT", "soon", `config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got "soon"`},
		{"EVENTS.PUBLISH_TIMEOUT", false, "config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got false"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			isolateConfig(t)
			_, err := Load("", map[string]any{tt.key: tt.value})
			wantErr(t, err, tt.err)
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestLoadConfigAcceptsLooseForms(t *testing.T) {
	isolateConfig(t)
	t.Setenv("HYPHA_LOG_LEVEL", "WARNING")
	c, err := Load("", map[string]any{"max_workers": "5", "RPC_TIMEOUT": "2.5", "serializer": "JSON", "HEARTBEAT": 0,
		"GRACE_PERIOD": 3 * time.Second, "rpc_retry_policy.interval_max": 2.0, "MAX_MESSAGE_SIZE": "1048576",
		"rpc_max_in_flight": 100.0, "health.address": " :8080 "})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Settings
	if s.MaxWorkers != 5 || s.RPCTimeout != 2500*time.Millisecond || s.Serializer != "json" || s.Heartbeat != 0 ||
		s.LogLevel != slog.LevelWarn || s.GracePeriod != 3*time.Second || s.RPCRetryPolicy.IntervalMax != 2*time.Second ||
		s.MaxMessageSize != 1<<20 || s.RPCMaxInFlight != 100 || s.Health.Address != ":8080" {
		t.Fatalf("unexpected settings %+v", s)
	}
}

func TestConfigSettingsValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Settings)
		err    string
	}{
		{"defaults", func(*Settings) {}, ""},
		{"amqps", func(s *Settings) { s.AMQPURI = "amqps://h:5671/v" }, ""},
		{"embedded broker", func(s *Settings) { s.AMQPURI = "memory://" }, ""},
		{"named embedded broker", func(s *Settings) { s.AMQPURI = "memory://tests" }, ""},
		{"no scheme", func(s *Settings) { s.AMQPURI = "localhost:5672" }, "config AMQP_URI: want an amqp://, amqps:// or memory:// URL"},
		{"timeout", func(s *Settings) { s.RPCTimeout = 0 }, "config RPC_TIMEOUT: want seconds > 0, got 0"},
		{"retries", func(s *Settings) { s.RPCRetryPolicy.MaxRetries = -2 }, "config RPC_RETRY_POLICY.MAX_RETRIES"},
		{"reconnect", func(s *Settings) { s.Reconnect.IntervalStart = 0 }, "config RECONNECT.INTERVAL_START"},
		{"workers", func(s *Settings) { s.MaxWorkers = 0 }, "config MAX_WORKERS: want a whole number >= 1, got 0"},
		{"serializer", func(s *Settings) { s.Serializer = "" }, `config SERIALIZER: only "json" is supported, got ""`},
		{"exporter", func(s *Settings) { s.Tracing.Exporter = "OTLP" }, `config TRACING.EXPORTER: want otlp, console or none, got "OTLP"`},
		{"protocol", func(s *Settings) { s.Tracing.Protocol = "" }, `config TRACING.PROTOCOL: want http/protobuf or grpc, got ""`},
		{"ratio", func(s *Settings) { s.Tracing.SamplerRatio = 1.5 }, "config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got 1.5"},
		{"endpoint unused", func(s *Settings) { s.Tracing.Endpoint = "" }, ""},
		{"endpoint for otlp", func(s *Settings) { s.Tracing.Exporter, s.Tracing.Endpoint = "otlp", "" },
			`config TRACING.ENDPOINT: want an http:// or https:// URL, got ""`},
		{"metrics on", func(s *Settings) { s.Metrics.Address = "[::1]:9464" }, ""},
		{"metrics address", func(s *Settings) { s.Metrics.Address = "9464" }, `config METRICS.ADDRESS: want host:port, got "9464"`},
		{"health on", func(s *Settings) { s.Health.Address = ":8080" }, ""},
		{"health address", func(s *Settings) { s.Health.Address = "localhost" }, `config HEALTH.ADDRESS: want host:port, got "localhost"`},
		{"write timeout", func(s *Settings) { s.HTTP.WriteTimeout = -time.Second }, "config HTTP.WRITE_TIMEOUT: want seconds > 0, got -1"},
		{"header bytes", func(s *Settings) { s.HTTP.MaxHeaderBytes = 0 }, "config HTTP.MAX_HEADER_BYTES: want a whole number of bytes > 0, got 0"},
		{"message size", func(s *Settings) { s.MaxMessageSize = 0 }, "config MAX_MESSAGE_SIZE: want a whole number of bytes > 0, got 0"},
		{"inflight bytes", func(s *Settings) { s.MaxInflightBytes = -1 }, "config MAX_INFLIGHT_BYTES: want a whole number of bytes > 0, got -1"},
		{"in flight", func(s *Settings) { s.RPCMaxInFlight = 0 }, "config RPC_MAX_IN_FLIGHT: want a whole number >= 1, got 0"},
		{"no event retries", func(s *Settings) { s.Events.MaxRetries = 0 }, ""},
		{"event retries", func(s *Settings) { s.Events.MaxRetries = -1 }, "config EVENTS.MAX_RETRIES: want a whole number >= 0, got -1"},
		{"publish timeout", func(s *Settings) { s.Events.PublishTimeout = 0 }, "config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.change(&s)
			wantErr(t, s.Validate(), tt.err)
		})
	}
}

func TestConfigReadsServiceKeys(t *testing.T) {
	isolateConfig(t)
	const file = "MAX_WORKERS: 3\nusers:\n  db_dsn: postgres://db\n  cache_ttl: 1.5\n  pool: \"8\"\n  debug: \"true\"\n" +
		"  tags: [a, b]\n  retry: {backoff: 2m}\n  port: 8080\n  nothing:\n"
	c, err := Load(writeConfig(t, "c.yaml", file), nil)
	if err != nil {
		t.Fatal(err)
	}
	str := func(k string) (any, error) { return c.String(k) }
	whole := func(k string) (any, error) { return c.Int(k) }
	number := func(k string) (any, error) { return c.Float64(k) }
	boolean := func(k string) (any, error) { return c.Bool(k) }
	duration := func(k string) (any, error) { return c.Duration(k) }
	for _, tt := range []struct {
		name   string
		getter func(string) (any, error)
		key    string
		want   any
		err    string
	}{
		{"String", str, "Users.DB_DSN", "postgres://db", ""},
		{"String of a number", str, "users.cache_ttl", "1.5", ""},
		{"String of a whole number", str, "users.port", "8080", ""},
		{"String absent", str, "users.nope", "", "config users.nope: not set"},
		{"String of a list", str, "users.tags", "", "config users.tags: want text, got a list"},
		{"String of null", str, "users.nothing", "", "config users.nothing: want text, got null"},
		{"Int", whole, "users.port", 8080, ""},
		{"Int from text", whole, "users.pool", 8, ""},
		{"Int of a fraction", whole, "users.cache_ttl", 0, "config users.cache_ttl: want a whole number, got 1.5"},
		{"Int of text", whole, "users.db_dsn", 0, `config users.db_dsn: want a whole number, got "postgres://db"`},
		{"Int of a boolean", whole, "users.debug", 0, `config users.debug: want a whole number, got "true"`},
		{"Int absent", whole, "users.workers", 0, "config users.workers: not set"},
		{"Int of a standard key", whole, "max_workers", 3, ""},
		{"Float64", number, "users.cache_ttl", 1.5, ""},
		{"Float64 of text", number, "users.db_dsn", 0.0, `config users.db_dsn: want a number, got "postgres://db"`},
		{"Bool from text", boolean, "users.debug", true, ""},
		{"Bool of a number", boolean, "users.port", false, "config users.port: want true or false, got 8080"},
		{"Bool absent", boolean, "users.verbose", false, "config users.verbose: not set"},
		{"Duration in seconds", duration, "users.cache_ttl", 1500 * time.Millisecond, ""},
		{"Duration as Go writes it", duration, "users.retry.backoff", 2 * time.Minute, ""},
		{"Duration of a standard key", duration, "GRACE_PERIOD", defaultGracePeriod, ""},
		{"Duration of text", duration, "users.db_dsn", time.Duration(0),
			`config users.db_dsn: want seconds or a duration such as 1m30s, got "postgres://db"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.getter(tt.key)
			wantErr(t, err, tt.err)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
	if _, err := c.Int("users.nope"); !errors.Is(err, ErrNotSet) {
		t.Fatalf("Int of an absent key: %v, want ErrNotSet", err)
	}
	for _, tt := range []struct {
		name      string
		got, want any
	}{
		{"Exists", c.Exists("USERS.TAGS"), true},
		{"Exists absent", c.Exists("users.nope"), false},
		{"Get list", c.Get("users.tags"), []any{"a", "b"}},
		{"Get standard key", c.Get("max_workers"), 3},
		{"zero Config", Config{}.Get("users"), nil},
	} {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.name, tt.got, tt.want)
		}
	}
	var users struct {
		DSN      string        `yaml:"db_dsn"`
		CacheTTL time.Duration `yaml:"cache_ttl"`
		Pool     int
		Port     string
		Tags     []string
		Retry    struct{ Backoff time.Duration }
		Grace    time.Duration `yaml:"grace_period"`
	}
	if err := c.Unmarshal("USERS", &users); err != nil {
		t.Fatal(err)
	}
	if err := c.Unmarshal("", &users); err != nil || users.Grace != defaultGracePeriod {
		t.Fatalf("Unmarshal of the whole config: %v, grace period %v", err, users.Grace)
	}
	if users.DSN != "postgres://db" || users.CacheTTL != 1500*time.Millisecond || users.Pool != 8 || users.Port != "8080" ||
		!slices.Equal(users.Tags, []string{"a", "b"}) || users.Retry.Backoff != 2*time.Minute {
		t.Fatalf("Unmarshal gave %+v", users)
	}
	var bad struct{ Pool int }
	if err := c.Unmarshal("users", &bad); err != nil {
		t.Fatal(err)
	}
	var fraction struct {
		CacheTTL int `yaml:"cache_ttl"`
	}
	wantErr(t, c.Unmarshal("users", &fraction), "not a whole number")
}

// TestRepoConfigYAMLIsTheDefaults keeps the shipped config.yaml and the defaults in step, every
// section (TRACING, METRICS, EVENTS, ...) included.
func TestRepoConfigYAMLIsTheDefaults(t *testing.T) {
	path, err := filepath.Abs(filepath.Join("..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	isolateConfig(t)
	c, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Settings != DefaultSettings() {
		t.Fatalf("config.yaml gives\n%+v\nthe defaults are\n%+v", c.Settings, DefaultSettings())
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("config.yaml gives warnings %q", w)
	}
	file, err := fileLayer(path) // on its own: the merged keys would always include the defaults
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := newLayer(settingsMap(DefaultSettings()), func(string) string { return sourceDefault })
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(file.sources), sortedKeys(defaults.sources); !slices.Equal(got, want) {
		t.Fatalf("config.yaml has keys %v, want exactly %v", got, want)
	}
}

// TestLoadConfigTracingAndMetrics reads TRACING, METRICS and HEALTH through the repo's config.yaml (its
// OTEL_*, METRICS_ADDRESS and HEALTH_ADDRESS substitutions), the HYPHA_* variables and other files.
func TestLoadConfigTracingAndMetrics(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defaults := DefaultSettings()
	tests := []struct {
		name    string
		file    string // YAML text; "" for the repo's config.yaml
		env     map[string]string
		tracing TracingSettings
		metrics MetricsSettings
		health  HealthSettings
		err     string
	}{
		{name: "defaults", tracing: defaults.Tracing},
		{name: "defaults without config.yaml", file: "# nothing\n", tracing: defaults.Tracing},
		{name: "OTEL_* variables", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			tracing: TracingSettings{Exporter: "otlp", Endpoint: defaultTracingEndpoint, Protocol: "grpc", SamplerRatio: 1}},
		{name: "OTEL endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318"},
			tracing: TracingSettings{Exporter: "otlp", Endpoint: "https://otel.example:4318", Protocol: defaultTracingProtocol, SamplerRatio: 1}},
		{name: "exporter case", env: map[string]string{"OTEL_TRACES_EXPORTER": "Console"},
			tracing: TracingSettings{Exporter: "console", Endpoint: defaultTracingEndpoint, Protocol: defaultTracingProtocol, SamplerRatio: 1}},
		{name: "HYPHA_ sampler ratio", env: map[string]string{"HYPHA_TRACING__SAMPLER_RATIO": "0.5"},
			tracing: TracingSettings{Exporter: "none", Endpoint: defaultTracingEndpoint, Protocol: defaultTracingProtocol, SamplerRatio: 0.5}},
		{name: "HYPHA_ beats OTEL_", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "HYPHA_TRACING__EXPORTER": "none"},
			tracing: defaults.Tracing},
		{name: "endpoint unchecked when not otlp", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ""},
			tracing: TracingSettings{Exporter: "none", Protocol: defaultTracingProtocol, SamplerRatio: 1}},
		{name: "METRICS_ADDRESS", env: map[string]string{"METRICS_ADDRESS": "127.0.0.1:9464"},
			tracing: defaults.Tracing, metrics: MetricsSettings{Address: "127.0.0.1:9464"}},
		{name: "METRICS_ADDRESS empty", env: map[string]string{"METRICS_ADDRESS": ""}, tracing: defaults.Tracing},
		{name: "HYPHA_METRICS__ADDRESS", env: map[string]string{"HYPHA_METRICS__ADDRESS": ":9464"},
			tracing: defaults.Tracing, metrics: MetricsSettings{Address: ":9464"}},
		{name: "lower-case spellings", file: "tracing:\n  exporter: OTLP\n  endpoint: http://collector:4318/\n  protocol: GRPC\n" +
			"  sampler_ratio: \"0.25\"\nmetrics: {address: '[::1]:9464'}\n",
			tracing: TracingSettings{Exporter: "otlp", Endpoint: "http://collector:4318/", Protocol: "grpc", SamplerRatio: 0.25},
			metrics: MetricsSettings{Address: "[::1]:9464"}},
		{name: "null address is off", file: "METRICS:\n  ADDRESS:\n", tracing: defaults.Tracing},
		{name: "HEALTH_ADDRESS", env: map[string]string{"HEALTH_ADDRESS": "0.0.0.0:8080"},
			tracing: defaults.Tracing, health: HealthSettings{Address: "0.0.0.0:8080"}},
		{name: "bad HEALTH_ADDRESS", env: map[string]string{"HEALTH_ADDRESS": "localhost"},
			err: `config HEALTH.ADDRESS: want host:port, got "localhost"`},
		{name: "bad OTEL exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "jaeger"},
			err: `config TRACING.EXPORTER: want otlp, console or none, got "jaeger"`},
		{name: "bad OTEL protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			err: `config TRACING.PROTOCOL: want http/protobuf or grpc, got "http/json"`},
		{name: "bad HYPHA_ ratio", env: map[string]string{"HYPHA_TRACING__SAMPLER_RATIO": "2"},
			err: "config TRACING.SAMPLER_RATIO: want a number from 0 to 1, got 2"},
		{name: "otlp without endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": ""},
			err: `config TRACING.ENDPOINT: want an http:// or https:// URL, got ""`},
		{name: "otlp endpoint without scheme", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"},
			err: `config TRACING.ENDPOINT: want an http:// or https:// URL, got "localhost:4318"`},
		{name: "otlp endpoint without host", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http:///v1"},
			err: `config TRACING.ENDPOINT: want an http:// or https:// URL, got "http:///v1"`},
		{name: "otlp endpoint of another scheme", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://u:secret@h/"},
			err: `config TRACING.ENDPOINT: want an http:// or https:// URL, got "ftp://u:xxxxx@h/"`},
		{name: "otlp endpoint unparsable", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp",
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://u:secret@h:port/"},
			err: `config TRACING.ENDPOINT: want an http:// or https:// URL: invalid port`},
		{name: "bad METRICS_ADDRESS", env: map[string]string{"METRICS_ADDRESS": "nope"},
			err: `config METRICS.ADDRESS: want host:port, got "nope"`},
		{name: "unknown sub-key", file: "tracing:\n  ratio: 0.5\n",
			err: "config TRACING.RATIO: unknown key; TRACING holds only EXPORTER, ENDPOINT, PROTOCOL, SAMPLER_RATIO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			setEnv(t, tt.env)
			path := repo
			if tt.file != "" {
				path = writeConfig(t, "c.yaml", tt.file)
			}
			c, err := Load(path, nil)
			wantErr(t, err, tt.err)
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Fatalf("error leaks the password: %v", err)
			}
			if err == nil && (c.Tracing != tt.tracing || c.Metrics != tt.metrics || c.Health != tt.health) {
				t.Fatalf("got %+v %+v %+v, want %+v %+v %+v", c.Tracing, c.Metrics, c.Health, tt.tracing, tt.metrics, tt.health)
			}
		})
	}
}

// TestLoadConfigEvents reads EVENTS through the repo's config.yaml, the HYPHA_* variables and other files.
func TestLoadConfigEvents(t *testing.T) {
	events := func(retries int, timeout time.Duration) EventsSettings {
		e := DefaultSettings().Events
		e.MaxRetries, e.PublishTimeout = retries, timeout
		return e
	}
	repo, err := filepath.Abs(filepath.Join("..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defaults := events(defaultEventMaxRetries, defaultEventPublishTimeout)
	tests := []struct {
		name string
		file string // YAML text; "" for the repo's config.yaml
		env  map[string]string
		want EventsSettings
		err  string
	}{
		{name: "defaults", want: defaults},
		{name: "defaults without config.yaml", file: "# nothing\n", want: defaults},
		{name: "HYPHA_EVENTS__MAX_RETRIES", env: map[string]string{"HYPHA_EVENTS__MAX_RETRIES": "5"},
			want: events(5, defaultEventPublishTimeout)},
		{name: "HYPHA_EVENTS__PUBLISH_TIMEOUT", env: map[string]string{"HYPHA_EVENTS__PUBLISH_TIMEOUT": "2.5"},
			want: events(defaultEventMaxRetries, 2500*time.Millisecond)},
		{name: "lower-case env", env: map[string]string{"HYPHA_events__max_retries": "0"},
			want: events(0, defaultEventPublishTimeout)},
		{name: "lower-case spellings", file: "events:\n  max_retries: 7\n  publish_timeout: \"0.5\"\n",
			want: events(7, 500*time.Millisecond)},
		{name: "mixed case, one key", file: "Events: {Max_Retries: \"1\"}\n",
			want: events(1, defaultEventPublishTimeout)},
		{name: "HYPHA_ beats the file", file: "EVENTS:\n  MAX_RETRIES: 7\n", env: map[string]string{"HYPHA_EVENTS__MAX_RETRIES": "2"},
			want: events(2, defaultEventPublishTimeout)},
		{name: "bad HYPHA_ retries", env: map[string]string{"HYPHA_EVENTS__MAX_RETRIES": "-1"},
			err: "config EVENTS.MAX_RETRIES: want a whole number >= 0, got -1"},
		{name: "fractional retries", file: "EVENTS:\n  MAX_RETRIES: 2.5\n",
			err: "config EVENTS.MAX_RETRIES: want a whole number >= 0, got 2.5"},
		{name: "text retries", env: map[string]string{"HYPHA_EVENTS__MAX_RETRIES": "lots"},
			err: `config EVENTS.MAX_RETRIES: want a whole number >= 0, got "lots"`},
		{name: "null retries", file: "EVENTS:\n  MAX_RETRIES:\n",
			err: "config EVENTS.MAX_RETRIES: want a whole number >= 0, got null"},
		{name: "zero timeout", env: map[string]string{"HYPHA_EVENTS__PUBLISH_TIMEOUT": "0"},
			err: "config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got 0"},
		{name: "negative timeout", file: "events:\n  publish_timeout: -1\n",
			err: "config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got -1"},
		{name: "text timeout", file: "EVENTS:\n  PUBLISH_TIMEOUT: 30s\n",
			err: `config EVENTS.PUBLISH_TIMEOUT: want seconds > 0, got "30s"`},
		{name: "not a mapping", file: "EVENTS: on\n",
			err: `config EVENTS: want a mapping of MAX_RETRIES, PUBLISH_TIMEOUT, HANDLER_TIMEOUT, RETRY_DELAY, NAMEKO_QUEUES, got "on"`},
		{name: "unknown sub-key", file: "events:\n  dead_letter: true\n",
			err: "config EVENTS.DEAD_LETTER: unknown key; EVENTS holds only MAX_RETRIES, PUBLISH_TIMEOUT, HANDLER_TIMEOUT, RETRY_DELAY, NAMEKO_QUEUES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			setEnv(t, tt.env)
			path := repo
			if tt.file != "" {
				path = writeConfig(t, "c.yaml", tt.file)
			}
			c, err := Load(path, nil)
			wantErr(t, err, tt.err)
			if err == nil && c.Events != tt.want {
				t.Fatalf("Events = %+v, want %+v", c.Events, tt.want)
			}
		})
	}
}
