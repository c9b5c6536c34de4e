package framework

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/v2"
	"go.yaml.in/yaml/v3"
)

// This file turns the raw sources of a Config (the file, the environment, the overrides) into maps with
// upper-case keys, and reads the standard keys out of the merged result.

// envPrefix starts every environment variable that overrides a key; "__" separates nesting levels.
const envPrefix = "HYPHA_"

// exprPattern matches one ${VAR} or ${VAR:default}; the default runs to the first "}".
var exprPattern = regexp.MustCompile(`\$\{([^}]*)\}`)

// parseFile parses config.yaml's bytes, substitutes its ${...} expressions and upper-cases its keys.
func parseFile(path string, b []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config: parse %q: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].ShortTag() == "!!null" {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: %q must hold KEY: value pairs at the top, not a list or a single value", path)
	}
	if err := substitute(root, ""); err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := root.Decode(&raw); err != nil {
		return nil, fmt.Errorf("config: parse %q: %w", path, err)
	}
	return upperMap(raw, "")
}

// substitute replaces, in place, the ${...} expressions of every string scalar under n; path is n's key.
// An alias is skipped: its anchor is substituted where it is defined.
func substitute(n *yaml.Node, path string) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := substitute(n.Content[i+1], joinKey(path, strings.ToUpper(n.Content[i].Value))); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := substitute(c, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		return substituteScalar(n, path)
	}
	return nil
}

// substituteScalar substitutes one scalar. As in nameko, a plain scalar that is exactly one expression is
// re-read as a YAML scalar, so `${W:10}` is an int; text around an expression, or quotes, keep a string.
// nameko's explicit tags work too: !env_var always re-reads, !raw_env_var never does.
func substituteScalar(n *yaml.Node, path string) error {
	tag := n.ShortTag()
	if tag != "!!str" && tag != "!env_var" && tag != "!raw_env_var" || !strings.Contains(n.Value, "${") {
		return nil
	}
	out, whole, err := expand(n.Value, path)
	if err != nil {
		return err
	}
	retype := whole && (tag == "!env_var" || tag == "!!str" && n.Style == 0)
	n.Value, n.Tag, n.Style = out, "!!str", n.Style&^yaml.TaggedStyle
	if retype && scalarTag(out) != "!!str" {
		n.Tag, n.Style = "", 0 // the decoder resolves the type from the text
	}
	return nil
}

// expand replaces every ${VAR} and ${VAR:default} in s and reports whether s was exactly one expression.
func expand(s, path string) (string, bool, error) {
	spans := exprPattern.FindAllStringIndex(s, -1)
	whole := len(spans) == 1 && spans[0][0] == 0 && spans[0][1] == len(s)
	var err error
	out := exprPattern.ReplaceAllStringFunc(s, func(expr string) string {
		name, def, hasDef := strings.Cut(expr[2:len(expr)-1], ":")
		switch {
		case err != nil:
		case name == "" || strings.ContainsAny(name, "${ \t") || strings.Contains(def, "${"):
			err = fmt.Errorf("config %s: cannot read %q: want ${VAR} or ${VAR:default} (no nesting)", path, expr)
		default:
			if v, ok := os.LookupEnv(name); ok {
				return v
			}
			if hasDef {
				return def
			}
			err = fmt.Errorf("config %s: environment variable %s is not set and ${%s} has no default; set it or write ${%s:default}",
				path, name, name, name)
		}
		return ""
	})
	return out, whole, err
}

// scalarTag is the YAML tag that text takes as a plain scalar; only null, bool, int and float count,
// anything else (timestamps included) stays a string.
func scalarTag(text string) string {
	switch tag := (&yaml.Node{Kind: yaml.ScalarNode, Value: text}).ShortTag(); tag {
	case "!!null", "!!bool", "!!int", "!!float":
		return tag
	}
	return "!!str"
}

// parseScalar reads text as a YAML scalar: "5" is an int, "true" a bool, "" null; other text stays itself.
func parseScalar(text string) any {
	if scalarTag(text) == "!!str" {
		return text
	}
	var v any
	if err := (&yaml.Node{Kind: yaml.ScalarNode, Value: text}).Decode(&v); err != nil {
		return text
	}
	return v
}

// envLayer reads the HYPHA_<KEY> variables ("__" between levels), each value parsed as a YAML scalar.
func envLayer() (map[string]any, error) {
	raw, err := env.Provider("__", env.Opt{
		Prefix: envPrefix,
		TransformFunc: func(k, v string) (string, any) {
			k = strings.TrimPrefix(k, envPrefix)
			if strings.EqualFold(k, strings.TrimPrefix(configFileEnv, envPrefix)) {
				return "", nil
			}
			return k, parseScalar(v)
		},
	}).Read()
	if err != nil {
		return nil, fmt.Errorf("config: read %s* environment variables: %w", envPrefix, err)
	}
	return upperMap(raw, "")
}

// overridesLayer expands the dotted top-level keys of the overrides and upper-cases every key.
func overridesLayer(overrides map[string]any) (map[string]any, error) {
	raw, err := confmap.Provider(overrides, ".").Read()
	if err != nil {
		return nil, fmt.Errorf("config: overrides: %w", err)
	}
	return upperMap(raw, "")
}

// upperMap returns m with every key upper-cased, at every depth, so that keys match case-insensitively.
// Two spellings of one key in the same mapping ("rpc_exchange", "RPC_EXCHANGE") must hold equal values.
func upperMap(m map[string]any, path string) (map[string]any, error) {
	out := make(map[string]any, len(m))
	spelling := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		key := strings.ToUpper(k)
		full := joinKey(path, key)
		if key == "" {
			return nil, fmt.Errorf("config %s: a key has an empty name; name it or remove it", joinKey(path, `""`))
		}
		v, err := upperValue(m[k], full)
		if err != nil {
			return nil, err
		}
		if first, twice := spelling[key]; twice && !reflect.DeepEqual(out[key], v) {
			return nil, fmt.Errorf("config %s: set twice with different values, as %q and %q; keep one", full, first, k)
		}
		out[key], spelling[key] = v, k
	}
	return out, nil
}

// upperValue upper-cases the keys of the maps in v, lists included.
func upperValue(v any, path string) (any, error) {
	switch t := v.(type) {
	case map[string]any:
		return upperMap(t, path)
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = e
		}
		return upperMap(m, path)
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			var err error
			if out[i], err = upperValue(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// readSettings reads the standard keys out of the merged configuration, then validates their ranges.
func readSettings(k *koanf.Koanf) (Settings, error) {
	r := settingsReader{k: k}
	r.section(keyRetryPolicy, keyMaxRetries, keyIntervalStart, keyIntervalStep, keyIntervalMax)
	r.section(keyReconnect, keyIntervalStart, keyIntervalMax, keyMaxElapsed)
	r.section(keyTracing, keyExporter, keyEndpoint, keyProtocol, keySamplerRatio)
	r.section(keyMetrics, keyAddress)
	r.section(keyHealth, keyAddress)
	r.section(keyEvents, keyMaxRetries, keyPublishTimeout)
	retry, reconnect, tracing, events := keyRetryPolicy+".", keyReconnect+".", keyTracing+".", keyEvents+"."
	s := Settings{
		AMQPURI:     r.text(keyAMQPURI, wantAMQPURI),
		RPCExchange: r.text(keyRPCExchange, wantExchange),
		RPCTimeout:  r.seconds(keyRPCTimeout, wantSecondsAbove),
		RPCRetryPolicy: RetryPolicy{
			MaxRetries:    r.whole(retry+keyMaxRetries, wantCount),
			IntervalStart: r.seconds(retry+keyIntervalStart, wantSeconds),
			IntervalStep:  r.seconds(retry+keyIntervalStep, wantSeconds),
			IntervalMax:   r.seconds(retry+keyIntervalMax, wantSeconds),
		},
		Reconnect: ReconnectPolicy{
			IntervalStart: r.seconds(reconnect+keyIntervalStart, wantSecondsAbove),
			IntervalMax:   r.seconds(reconnect+keyIntervalMax, wantSeconds),
			MaxElapsed:    r.seconds(reconnect+keyMaxElapsed, wantSeconds),
		},
		MaxWorkers:         r.whole(keyMaxWorkers, wantWorkers),
		GracePeriod:        r.seconds(keyGracePeriod, wantSeconds),
		Heartbeat:          r.seconds(keyHeartbeat, wantSeconds),
		ParentCallsTracked: r.whole(keyParentCallsTracked, wantCount),
		Serializer:         strings.ToLower(r.text(keySerializer, wantSerializer)),
		LogLevel:           r.logLevel(keyLogLevel),
		Tracing: TracingSettings{
			Exporter:     strings.ToLower(strings.TrimSpace(r.text(tracing+keyExporter, wantExporter))),
			Endpoint:     strings.TrimSpace(r.optionalText(tracing+keyEndpoint, wantEndpoint)),
			Protocol:     strings.ToLower(strings.TrimSpace(r.text(tracing+keyProtocol, wantProtocol))),
			SamplerRatio: r.number(tracing+keySamplerRatio, wantRatio),
		},
		Metrics:        MetricsSettings{Address: strings.TrimSpace(r.optionalText(keyMetrics+"."+keyAddress, wantHostPort))},
		Health:         HealthSettings{Address: strings.TrimSpace(r.optionalText(keyHealth+"."+keyAddress, wantHostPort))},
		MaxMessageSize: int64(r.whole(keyMaxMessageSize, wantBytes)),
		RPCMaxInFlight: r.whole(keyRPCMaxInFlight, wantInFlight),
		Events: EventsSettings{
			MaxRetries:     r.whole(events+keyMaxRetries, wantCount),
			PublishTimeout: r.seconds(events+keyPublishTimeout, wantSecondsAbove),
		},
	}
	if r.err != nil {
		return Settings{}, r.err
	}
	return s, s.Validate()
}

// settingsReader converts raw values to typed ones and keeps the first type error, naming its key.
type settingsReader struct {
	k   *koanf.Koanf
	err error
}

func (r *settingsReader) fail(key, want string, v any) {
	if r.err == nil {
		r.err = fmt.Errorf("config %s: want %s, got %s", key, want, describe(v))
	}
}

// section checks that key holds a mapping whose keys are all among known.
func (r *settingsReader) section(key string, known ...string) {
	m, ok := r.k.Get(key).(map[string]any)
	if !ok {
		r.fail(key, "a mapping of "+strings.Join(known, ", "), r.k.Get(key))
		return
	}
	for _, sub := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, sub) && r.err == nil {
			r.err = fmt.Errorf("config %s.%s: unknown key; %s holds only %s", key, sub, key, strings.Join(known, ", "))
		}
	}
}

func (r *settingsReader) text(key, want string) string {
	s, ok := r.k.Get(key).(string)
	if !ok {
		r.fail(key, want, r.k.Get(key))
	}
	return s
}

// optionalText reads text where null, as `${VAR:}` or a bare `KEY:` gives, means "".
func (r *settingsReader) optionalText(key, want string) string {
	if r.k.Get(key) == nil {
		return ""
	}
	return r.text(key, want)
}

func (r *settingsReader) number(key, want string) float64 {
	f, ok := toFloat(r.k.Get(key))
	if !ok {
		r.fail(key, want, r.k.Get(key))
	}
	return f
}

func (r *settingsReader) whole(key, want string) int {
	n, ok := toWhole(r.k.Get(key))
	if !ok {
		r.fail(key, want, r.k.Get(key))
	}
	return n
}

func (r *settingsReader) seconds(key, want string) time.Duration {
	d, ok := toDuration(r.k.Get(key))
	if !ok {
		r.fail(key, want, r.k.Get(key))
	}
	return d
}

func (r *settingsReader) logLevel(key string) slog.Level {
	levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo,
		"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError}
	if level, ok := r.k.Get(key).(slog.Level); ok {
		return level // set in code, through the overrides
	}
	s, _ := r.k.Get(key).(string)
	level, ok := levels[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		r.fail(key, wantLogLevel, r.k.Get(key))
	}
	return level
}

// toWhole converts an integer, an integral float or a string holding one to int.
func toWhole(v any) (int, bool) {
	if s, ok := v.(string); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
			return n, true
		}
	}
	f, ok := toFloat(v)
	if !ok || f != math.Trunc(f) || f < math.MinInt || f >= math.MaxInt {
		return 0, false
	}
	return int(f), true
}

// toFloat converts a number, or a string holding a decimal number, to float64.
func toFloat(v any) (float64, bool) {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return float64(rv.Uint()), true
	case reflect.Float32, reflect.Float64:
		return rv.Float(), true
	case reflect.String:
		f, err := strconv.ParseFloat(strings.TrimSpace(rv.String()), 64)
		return f, err == nil
	}
	return 0, false
}

// toDuration converts seconds (a number, or a string holding one) to a Duration; a time.Duration, as
// code may pass in the overrides, is taken as it is.
func toDuration(v any) (time.Duration, bool) {
	if d, ok := v.(time.Duration); ok {
		return d, true
	}
	f, ok := toFloat(v)
	if !ok {
		return 0, false
	}
	return secondsToDuration(f)
}

// secondsToDuration converts seconds to a Duration, rounding to the nanosecond; false if out of range.
func secondsToDuration(f float64) (time.Duration, bool) {
	ns := math.Round(f * float64(time.Second))
	if math.IsNaN(ns) || ns < math.MinInt64 || ns >= math.MaxInt64 {
		return 0, false
	}
	return time.Duration(ns), true
}

// seconds is d as config.yaml writes it: an int when whole, else a float.
func seconds(d time.Duration) any {
	if d%time.Second == 0 {
		return int(d / time.Second)
	}
	return d.Seconds()
}

func secondsText(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// describe shows a raw value in an error message.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(t)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprint(v)
}
