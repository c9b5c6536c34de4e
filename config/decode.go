package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/v2"
)

// Values are decoded by koanf's Unmarshal through mapstructure, with these hooks in front: numbers are
// seconds for a time.Duration, text holding a number or a boolean counts as one, a fraction is never
// cut to a whole number, and log levels are read by name.

// settingsHook decodes Hypha's keys, which are strict: a duration is a number of seconds.
var settingsHook = mapstructure.ComposeDecodeHookFunc(secondsHook, levelHook, wholeHook, floatHook, boolHook)

// serviceHook decodes a service's keys: a duration may also be written as Go writes it ("1m30s"), text
// may hold a number or a boolean, and types that read text (net.IP, say) read it.
var serviceHook = mapstructure.ComposeDecodeHookFunc(secondsHook, mapstructure.StringToTimeDurationHookFunc(),
	levelHook, wholeHook, floatHook, boolHook, textHook, mapstructure.TextUnmarshallerHookFunc())

// decodeSettings decodes Hypha's keys out of the merged configuration and validates them. It returns
// the top-level keys that are not Hypha's; a key inside one of Hypha's sections that is not Hypha's is
// an error.
func decodeSettings(k *koanf.Koanf) (Settings, []string, error) {
	if err := preDecode(k); err != nil {
		return Settings{}, nil, err
	}
	var s Settings
	var md mapstructure.Metadata
	err := k.UnmarshalWithConf("", &s, koanf.UnmarshalConf{DecoderConfig: &mapstructure.DecoderConfig{
		DecodeHook: settingsHook, Metadata: &md,
	}})
	if err != nil {
		var de *mapstructure.DecodeError
		if !errors.As(err, &de) {
			return Settings{}, nil, fmt.Errorf("config: %w", err)
		}
		return Settings{}, nil, typeError(de.Name(), k.Get(de.Name()))
	}
	if err := checkNulls(k, "", hyphaKeys().top); err != nil {
		return Settings{}, nil, err
	}
	var others []string
	for _, key := range slices.Sorted(slices.Values(md.Unused)) {
		section, sub, nested := cutLast(key)
		if !nested {
			others = append(others, key)
			continue
		}
		return Settings{}, nil, fmt.Errorf("config %s: unknown key; %s holds only %s", joinKey(section, sub), section,
			strings.Join(hyphaKeys().sections[section], ", "))
	}
	s.normalize()
	return s, others, s.Validate()
}

// preDecode rewrites the values nameko's forms allow into the form the settings take: AMQP_URI written
// as a YAML list, a cluster's nodes, into the comma-separated text the environment gives, and
// AMQP_SSL.CERT_REQS written as a number into its name.
func preDecode(k *koanf.Koanf) error {
	// nameko writes AMQP_SSL.cert_reqs as Python's ssl.CERT_* number.
	if n, ok := toFloat(k.Get("AMQP_SSL.CERT_REQS")); ok {
		names := map[float64]string{0: "none", 1: "optional", 2: "required"}
		if name, ok := names[n]; ok {
			if err := k.Set("AMQP_SSL.CERT_REQS", name); err != nil {
				return err
			}
		}
	}
	list, ok := k.Get("AMQP_URI").([]any)
	if !ok {
		return nil
	}
	uris := make([]string, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok || strings.TrimSpace(s) == "" {
			return fmt.Errorf("config AMQP_URI: want %s, got %s as item %d", wantAMQPURI, describe(v), i+1)
		}
		uris[i] = strings.TrimSpace(s)
	}
	return k.Set("AMQP_URI", strings.Join(uris, ","))
}

// cutLast splits "A.B.C" into "A.B" and "C".
func cutLast(key string) (string, string, bool) {
	i := strings.LastIndex(key, ".")
	if i < 0 {
		return "", key, false
	}
	return key[:i], key[i+1:], true
}

// checkNulls reports the first of keys, at path, that holds null where it may not: mapstructure leaves
// the field as it was, which would pass for a zero.
func checkNulls(k *koanf.Koanf, path string, keys []string) error {
	for _, key := range keys {
		full := joinKey(path, key)
		if k.Get(full) == nil && !nullable[full] {
			return typeError(full, nil)
		}
		if sub, ok := hyphaKeys().sections[full]; ok {
			if err := checkNulls(k, full, sub); err != nil {
				return err
			}
		}
	}
	return nil
}

func typeError(key string, got any) error {
	return fmt.Errorf("config %s: want %s, got %s", key, want(key), describe(got))
}

// normalize trims the text settings and lower-cases the ones that are names.
func (s *Settings) normalize() {
	lower := func(v string) string { return strings.ToLower(strings.TrimSpace(v)) }
	s.Serializer = lower(s.Serializer)
	s.LogFormat = lower(s.LogFormat)
	s.Tracing.Exporter = lower(s.Tracing.Exporter)
	s.Tracing.Protocol = lower(s.Tracing.Protocol)
	s.Tracing.Endpoint = strings.TrimSpace(s.Tracing.Endpoint)
	s.Metrics.Address = strings.TrimSpace(s.Metrics.Address)
	s.Health.Address = strings.TrimSpace(s.Health.Address)
	s.HTTP.Address = strings.TrimSpace(s.HTTP.Address)
	s.QueueType = lower(s.QueueType)
	s.LoginMethod = strings.ToUpper(strings.TrimSpace(s.LoginMethod))
	s.RPCReplyKeyPrefix = strings.TrimSpace(s.RPCReplyKeyPrefix)
	s.AMQPSSL.CertReqs = lower(s.AMQPSSL.CertReqs)
	s.AMQPSSL.CACerts = strings.TrimSpace(s.AMQPSSL.CACerts)
	s.AMQPSSL.CertFile = strings.TrimSpace(s.AMQPSSL.CertFile)
	s.AMQPSSL.KeyFile = strings.TrimSpace(s.AMQPSSL.KeyFile)
}

var durationType = reflect.TypeFor[time.Duration]()

// secondsHook decodes a number, or text holding one, into a time.Duration of that many seconds.
func secondsHook(_, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	f, ok := toFloat(data)
	if !ok {
		return data, nil // a Duration from code, or a Go duration string for the next hook
	}
	ns := math.Round(f * float64(time.Second))
	if math.IsNaN(ns) || ns < math.MinInt64 || ns >= math.MaxInt64 {
		return nil, fmt.Errorf("%v seconds is out of range", data)
	}
	return time.Duration(ns), nil
}

// levels are the names LOG_LEVEL takes, nameko's "warning" included.
var levels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo,
	"warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError}

// levelHook decodes a level's name, in any case, into a slog.Level.
func levelHook(_, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[slog.Level]() {
		return data, nil
	}
	if level, ok := data.(slog.Level); ok {
		return level, nil
	}
	s, _ := data.(string)
	level, ok := levels[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return nil, errors.New("not a log level")
	}
	return level, nil
}

// wholeHook decodes an integral number, or text holding one, into an integer; a fraction is an error.
func wholeHook(_, to reflect.Type, data any) (any, error) {
	switch to.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return data, nil
	}
	switch reflect.ValueOf(data).Kind() {
	case reflect.String, reflect.Float32, reflect.Float64:
	default:
		return data, nil
	}
	if s, ok := data.(string); ok {
		if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return n, nil
		}
	}
	f, ok := toFloat(data)
	if !ok || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return nil, errors.New("not a whole number")
	}
	return int64(f), nil
}

// floatHook decodes text holding a number into a float.
func floatHook(_, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || to.Kind() != reflect.Float64 && to.Kind() != reflect.Float32 {
		return data, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return nil, errors.New("not a number")
	}
	return f, nil
}

// boolHook decodes text holding a boolean, as strconv.ParseBool reads it, into a bool.
func boolHook(_, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || to.Kind() != reflect.Bool {
		return data, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return nil, errors.New("not a boolean")
	}
	return b, nil
}

// textHook decodes a number or a boolean into text, as YAML wrote it.
func textHook(_, to reflect.Type, data any) (any, error) {
	if to.Kind() != reflect.String {
		return data, nil
	}
	switch v := data.(type) {
	case int, int64, uint64, bool:
		return fmt.Sprint(v), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return data, nil
}

// toFloat converts a number, or text holding a decimal number, to float64.
func toFloat(v any) (float64, bool) {
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if rv.Type() == durationType {
			return 0, false
		}
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
	case time.Duration:
		return secondsText(t)
	}
	return fmt.Sprint(v)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
