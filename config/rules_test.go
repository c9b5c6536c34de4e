package config

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestLoadConfigKeepsServiceCase checks the case rules: Hypha's keys are case-insensitive, a service's
// keys keep the case they were written in, and HYPHA_* variables and overrides match an existing key
// case-insensitively or else keep their own spelling.
func TestLoadConfigKeepsServiceCase(t *testing.T) {
	const file = "ROUTES:\n  acme: a\n  Beta: b\nmax_workers: 4\n"
	tests := []struct {
		name      string
		env       map[string]string
		overrides map[string]any
		key       string // read with Get, as stored
		want      any
	}{
		{name: "section keeps case", key: "ROUTES", want: map[string]any{"acme": "a", "Beta": "b"}},
		{name: "Hypha key upper-cased", key: "MAX_WORKERS", want: 4},
		{name: "env matches existing key", env: map[string]string{"HYPHA_routes__ACME": "z"}, key: "ROUTES",
			want: map[string]any{"acme": "z", "Beta": "b"}},
		{name: "env new key keeps spelling", env: map[string]string{"HYPHA_ROUTES__newOne": "n"}, key: "ROUTES",
			want: map[string]any{"acme": "a", "Beta": "b", "newOne": "n"}},
		{name: "override matches existing key", overrides: map[string]any{"routes.BETA": "y"}, key: "ROUTES",
			want: map[string]any{"acme": "a", "Beta": "y"}},
		{name: "nested override keeps spelling", overrides: map[string]any{"Mine": map[string]any{"camelCase": 1}}, key: "Mine",
			want: map[string]any{"camelCase": 1}},
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
			var routes map[string]string
			if err := c.Unmarshal("routes", &routes); err != nil || routes["acme"] == "" {
				t.Fatalf("Unmarshal(routes) = %v, %v: want the key acme as written", routes, err)
			}
		})
	}
}

func TestLoadConfigEnvSpellingsConflict(t *testing.T) {
	isolateConfig(t)
	setEnv(t, map[string]string{"HYPHA_MAX_WORKERS": "4", "HYPHA_max_workers": "5"})
	_, err := Load("", nil)
	wantErr(t, err, "config MAX_WORKERS: set twice with different values, by $HYPHA_MAX_WORKERS and $HYPHA_max_workers")
}

// TestLoadConfigLeavesDollarsAlone checks that only ${VAR} and ${VAR:default} are expressions.
func TestLoadConfigLeavesDollarsAlone(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       any
	}{
		{"bare dollar", "V: pa$word", "pa$word"},
		{"dollar and name", "V: $HOME", "$HOME"},
		{"dollar at the end", "V: cost$", "cost$"},
		{"double dollar", "V: a$$b", "a$$b"},
		{"dollar before an expression", "V: $${N:x}", "$x"},
		{"unclosed brace", "V: ${N", "${N"},
		{"quoted", `V: "pa$word"`, "pa$word"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			t.Setenv("HOME", "/home/x")
			c, err := Load(writeConfig(t, "c.yaml", tt.yaml+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Get("V"); got != tt.want {
				t.Fatalf("V = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestConfigSource(t *testing.T) {
	const file = "MAX_WORKERS: 3\nAMQP_URI: ${AMQP_URI:amqp://h/}\nRPC_EXCHANGE: ${EXCHANGE:x}\nMINE:\n  a: 1\n  b: 2\n"
	tests := []struct {
		name      string
		env       map[string]string
		overrides map[string]any
		key, want string
	}{
		{name: "default", key: "GRACE_PERIOD", want: sourceDefault},
		{name: "default in a section", key: "rpc_retry_policy.max_retries", want: sourceDefault},
		{name: "file", key: "max_workers", want: "c.yaml"},
		{name: "file, variable set", env: map[string]string{"AMQP_URI": "amqp://b/"}, key: "AMQP_URI", want: "c.yaml ($AMQP_URI)"},
		{name: "file, variable's default", key: "RPC_EXCHANGE", want: "c.yaml"},
		{name: "environment", env: map[string]string{"HYPHA_MAX_WORKERS": "5"}, key: "MAX_WORKERS", want: "$HYPHA_MAX_WORKERS"},
		{name: "environment, nested", env: map[string]string{"HYPHA_mine__A": "5"}, key: "MINE.a", want: "$HYPHA_mine__A"},
		{name: "override", env: map[string]string{"HYPHA_MAX_WORKERS": "5"}, overrides: map[string]any{"max_workers": 6},
			key: "MAX_WORKERS", want: sourceOverride},
		{name: "section from several", env: map[string]string{"HYPHA_MINE__B": "5"}, key: "mine", want: "c.yaml, $HYPHA_MINE__B"},
		{name: "absent", key: "NOPE", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			setEnv(t, tt.env)
			c, err := Load(writeConfig(t, "c.yaml", file), tt.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Source(tt.key); got != tt.want {
				t.Fatalf("Source(%q) = %q, want %q", tt.key, got, tt.want)
			}
			if got := c.Sources()["MAX_WORKERS"]; got == "" {
				t.Fatal("Sources() has no MAX_WORKERS")
			}
		})
	}
}

func TestLoadConfigWarnsOfTypos(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  map[string]string
		want []string
	}{
		{name: "none", yaml: "MAX_WORKERS: 4\nmy_service: {a: 1}"},
		{name: "one edit", yaml: "MAX_WORKER: 4", want: []string{"config MAX_WORKER is not a Hypha key: did you mean MAX_WORKERS?"}},
		{name: "lower case", yaml: "rpc_timeot: 4", want: []string{"config rpc_timeot is not a Hypha key: did you mean RPC_TIMEOUT?"}},
		{name: "two edits", yaml: "GRACE_PERIO: 1\nHEARTBEET: 1", want: []string{
			"config GRACE_PERIO is not a Hypha key: did you mean GRACE_PERIOD?",
			"config HEARTBEET is not a Hypha key: did you mean HEARTBEAT?"}},
		{name: "from the environment", env: map[string]string{"HYPHA_LOG_LEVE": "debug"},
			want: []string{"config LOG_LEVE is not a Hypha key: did you mean LOG_LEVEL?"}},
		{name: "far from any", yaml: "DATABASE: x\nWORKERS: 2\nTRACE: 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateConfig(t)
			setEnv(t, tt.env)
			c, err := Load(writeConfig(t, "c.yaml", tt.yaml+"\n"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Warnings(); !slices.Equal(got, tt.want) {
				t.Fatalf("Warnings() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadConfigNewKeys(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want func(Settings) bool
		err  string
	}{
		{name: "LOG_FORMAT json", yaml: "log_format: JSON", want: func(s Settings) bool { return s.LogFormat == "json" }},
		{name: "LOG_FORMAT bad", yaml: "LOG_FORMAT: xml", err: `config LOG_FORMAT: want text or json, got "xml"`},
		{name: "LOG_FORMAT number", yaml: "LOG_FORMAT: 1", err: "config LOG_FORMAT: want text or json, got 1"},
		{name: "REDACT_UNEXPECTED_ERRORS", yaml: "redact_unexpected_errors: true",
			want: func(s Settings) bool { return s.RedactUnexpectedErrors }},
		{name: "REDACT_UNEXPECTED_ERRORS text", yaml: "REDACT_UNEXPECTED_ERRORS: maybe",
			err: `config REDACT_UNEXPECTED_ERRORS: want true or false, got "maybe"`},
		{name: "HANDLER_TIMEOUT", yaml: "EVENTS: {HANDLER_TIMEOUT: 0.5}",
			want: func(s Settings) bool { return s.Events.HandlerTimeout == 500*time.Millisecond }},
		{name: "HANDLER_TIMEOUT zero", yaml: "EVENTS: {HANDLER_TIMEOUT: 0}", err: "config EVENTS.HANDLER_TIMEOUT: want seconds > 0, got 0"},
		{name: "RETRY_DELAY", yaml: "events:\n  retry_delay: {initial: 0.25, multiplier: 1.5, max: 10}",
			want: func(s Settings) bool {
				return s.Events.RetryDelay == RetryDelay{Initial: 250 * time.Millisecond, Multiplier: 1.5, Max: 10 * time.Second}
			}},
		{name: "RETRY_DELAY partial", yaml: "EVENTS:\n  RETRY_DELAY: {MAX: 5}",
			want: func(s Settings) bool {
				return s.Events.RetryDelay == RetryDelay{Initial: defaultEventRetryInitial, Multiplier: defaultEventRetryMultiplier, Max: 5 * time.Second}
			}},
		{name: "RETRY_DELAY.INITIAL zero", yaml: "EVENTS: {RETRY_DELAY: {INITIAL: 0}}",
			err: "config EVENTS.RETRY_DELAY.INITIAL: want seconds > 0, got 0"},
		{name: "RETRY_DELAY.MULTIPLIER below 1", yaml: "EVENTS: {RETRY_DELAY: {MULTIPLIER: 0.5}}",
			err: "config EVENTS.RETRY_DELAY.MULTIPLIER: want a number >= 1, got 0.5"},
		{name: "RETRY_DELAY.MAX below INITIAL", yaml: "EVENTS: {RETRY_DELAY: {INITIAL: 2, MAX: 1}}",
			err: "config EVENTS.RETRY_DELAY.MAX: want seconds >= INITIAL (2), got 1"},
		{name: "RETRY_DELAY unknown key", yaml: "EVENTS: {RETRY_DELAY: {FACTOR: 2}}",
			err: "config EVENTS.RETRY_DELAY.FACTOR: unknown key; EVENTS.RETRY_DELAY holds only INITIAL, MULTIPLIER, MAX"},
		{name: "RETRY_DELAY not a mapping", yaml: "EVENTS: {RETRY_DELAY: 1}",
			err: "config EVENTS.RETRY_DELAY: want a mapping of INITIAL, MULTIPLIER, MAX, got 1"},
		{name: "RETRY_DELAY null", yaml: "EVENTS: {RETRY_DELAY: }",
			err: "config EVENTS.RETRY_DELAY: want a mapping of INITIAL, MULTIPLIER, MAX, got null"},
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

// TestLoadConfigAcceptsTheEmbeddedBroker: memory:// and memory://<name>
// select the embedded broker.
func TestLoadConfigAcceptsTheEmbeddedBroker(t *testing.T) {
	isolateConfig(t)
	for _, uri := range []string{"memory://", "memory://tests", "MEMORY://x"} {
		t.Run(uri, func(t *testing.T) {
			cfg, err := Load("", map[string]any{"AMQP_URI": uri})
			if err != nil {
				t.Fatalf("AMQP_URI %s: %v", uri, err)
			}
			if cfg.AMQPURI != uri {
				t.Fatalf("AMQPURI = %q, want %q", cfg.AMQPURI, uri)
			}
		})
	}
	if _, err := Load("", map[string]any{"AMQP_URI": "memory:x"}); err == nil {
		t.Fatal("memory:x (no //) was accepted")
	}
}

// TestLoadConfigRPCPersistent: RPC_PERSISTENT is on unless config turns it off.
func TestLoadConfigRPCPersistent(t *testing.T) {
	isolateConfig(t)
	for _, tt := range []struct {
		values map[string]any
		want   bool
	}{{nil, true}, {map[string]any{"RPC_PERSISTENT": false}, false}, {map[string]any{"rpc_persistent": "true"}, true}} {
		cfg, err := Load("", tt.values)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RPCPersistent != tt.want {
			t.Errorf("%v: RPCPersistent = %v, want %v", tt.values, cfg.RPCPersistent, tt.want)
		}
	}
}

// TestLoadConfigRPCResend: RPC_RESEND is on unless config turns it off.
func TestLoadConfigRPCResend(t *testing.T) {
	isolateConfig(t)
	for _, tt := range []struct {
		values map[string]any
		want   bool
	}{{nil, true}, {map[string]any{"RPC_RESEND": false}, false}, {map[string]any{"rpc_resend": "true"}, true}} {
		cfg, err := Load("", tt.values)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.RPCResend != tt.want {
			t.Errorf("%v: RPCResend = %v, want %v", tt.values, cfg.RPCResend, tt.want)
		}
	}
}
