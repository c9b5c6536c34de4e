package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// ErrNotSet is the error, wrapped with the key, that the typed getters return for a key that is absent.
var ErrNotSet = errors.New("not set")

// Config is a configuration as loaded: the typed Settings plus every other key, for a service's own
// settings. A Config is read-only once loaded and safe for concurrent use; copies share the same keys.
// The zero Config has no keys and zero Settings.
type Config struct {
	Settings
	k        *koanf.Koanf
	idx      keyIndex
	sources  map[string]string
	warnings []string
}

// Load reads the configuration in this order, each layer overriding the one before: the defaults; the
// file (path if non-empty, else $HYPHA_CONFIG, else ./config.yaml if it exists, else none) with its
// ${VAR} and ${VAR:default} expressions substituted; HYPHA_<KEY> environment variables, with "__"
// between nesting levels (HYPHA_<KEY>_FILE names a file holding the value); then overrides, whose top-level keys may be dotted paths. It fails, naming the
// key, on a missing file, an unset ${VAR} without default, one of Hypha's keys spelled twice with
// different values, a key inside one of Hypha's sections that is not Hypha's, or one of Hypha's keys
// whose value does not validate. A top-level key that looks like a typo of Hypha's is a warning.
func Load(path string, overrides map[string]any) (Config, error) {
	defaults, err := newLayer(settingsMap(DefaultSettings()), func(string) string { return sourceDefault })
	if err != nil {
		return Config{}, err
	}
	file, err := fileLayer(path)
	if err != nil {
		return Config{}, err
	}
	k := koanf.New(".")
	layers := []layer{defaults, file}
	if err := merge(k, defaults, file); err != nil {
		return Config{}, err
	}
	env, err := envLayer(newKeyIndex(k))
	if err != nil {
		return Config{}, err
	}
	if err := merge(k, env); err != nil {
		return Config{}, err
	}
	code, err := overridesLayer(overrides, newKeyIndex(k))
	if err != nil {
		return Config{}, err
	}
	if err := merge(k, code); err != nil {
		return Config{}, err
	}
	layers = append(layers, env, code)
	s, others, err := decodeSettings(k)
	if err != nil {
		return Config{}, err
	}
	c := Config{Settings: s, k: k, idx: newKeyIndex(k), sources: map[string]string{}}
	for _, key := range k.Keys() {
		for _, l := range slices.Backward(layers) {
			if src, ok := l.sources[key]; ok {
				c.sources[key] = src
				break
			}
		}
	}
	for _, key := range others {
		if known := suggestion(key); known != "" {
			c.warnings = append(c.warnings, fmt.Sprintf("config %s is not a Hypha key: did you mean %s?", key, known))
		}
	}
	return c, nil
}

func merge(k *koanf.Koanf, layers ...layer) error {
	for _, l := range layers {
		if err := k.Load(confmap.Provider(l.values, ""), nil); err != nil {
			return fmt.Errorf("config: merge: %w", err)
		}
	}
	return nil
}

// fileLayer finds and reads the config file; no file at all gives an empty layer.
func fileLayer(path string) (layer, error) {
	hint := "check the path given with --config"
	if path == "" {
		path, hint = os.Getenv(fileEnv), "fix or unset "+fileEnv
	}
	if path == "" {
		if _, err := os.Stat("config.yaml"); errors.Is(err, fs.ErrNotExist) {
			return layer{}, nil
		}
		path, hint = "config.yaml", "make it readable"
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return layer{}, fmt.Errorf("config: file %q does not exist; %s", path, hint)
	}
	if err != nil {
		return layer{}, fmt.Errorf("config: read %q: %w; %s", path, err, hint)
	}
	return parseFile(path, b)
}

// Warnings are what loading found suspicious but not wrong, one line per key: a top-level key that is
// not Hypha's but is spelled almost like one ("config MAX_WORKER is not a Hypha key: did you mean
// MAX_WORKERS?"). framework logs them when the app is built.
func (c Config) Warnings() []string { return slices.Clone(c.warnings) }

// key returns the stored spelling of key, a dotted path matched exactly or else case-insensitively,
// and whether it is present.
func (c Config) key(key string) (string, bool) {
	if c.k == nil {
		return "", false
	}
	if c.k.Exists(key) {
		return key, true
	}
	stored := c.idx.resolve(key)
	return stored, c.k.Exists(stored)
}

// Get returns the value at key, a dotted path matched case-insensitively ("my_section.my_key"), or nil
// when it is absent; "" returns the whole configuration. Maps and lists are copies.
func (c Config) Get(key string) any {
	if c.k != nil && key == "" {
		return c.k.Raw()
	}
	stored, ok := c.key(key)
	if !ok {
		return nil
	}
	return c.k.Get(stored)
}

// Exists reports whether key is present, even if its value is null.
func (c Config) Exists(key string) bool {
	_, ok := c.key(key)
	return ok
}

// Source says where the value at key came from: "default", the file's path (followed by the
// variables its ${VAR} read, as in "config.yaml ($AMQP_URI)"), an environment variable ("$HYPHA_MAX_WORKERS")
// or "override" (Load's overrides). A section whose keys came from several places lists them, comma-separated; an
// absent key gives "".
func (c Config) Source(key string) string {
	stored, ok := c.key(key)
	if !ok {
		return ""
	}
	if src, ok := c.sources[stored]; ok {
		return src
	}
	var srcs []string
	for _, k := range sortedKeys(c.sources) {
		if strings.HasPrefix(k, stored+".") && !slices.Contains(srcs, c.sources[k]) {
			srcs = append(srcs, c.sources[k])
		}
	}
	return strings.Join(srcs, ", ")
}

// Sources maps every key that holds a value (dotted, as stored) to its Source.
func (c Config) Sources() map[string]string {
	return maps.Clone(c.sources)
}

// String returns the value at key as text; a number or a boolean is formatted as YAML wrote it. It
// fails on an absent key (wrapping ErrNotSet), null, a mapping or a list.
func (c Config) String(key string) (string, error) {
	var s string
	return s, c.decode(key, &s, "text")
}

// Int returns the value at key as an int; text holding a whole number counts. It fails on an absent
// key (wrapping ErrNotSet), a fraction, or anything else.
func (c Config) Int(key string) (int, error) {
	var n int
	return n, c.decode(key, &n, "a whole number")
}

// Float64 returns the value at key as a float64; text holding a number counts. It fails on an absent
// key (wrapping ErrNotSet) or anything else.
func (c Config) Float64(key string) (float64, error) {
	var f float64
	return f, c.decode(key, &f, "a number")
}

// Bool returns the value at key as a bool; text that strconv.ParseBool reads counts. It fails on an
// absent key (wrapping ErrNotSet) or anything else.
func (c Config) Bool(key string) (bool, error) {
	var b bool
	return b, c.decode(key, &b, "true or false")
}

// Duration returns the value at key as a time.Duration: a number is seconds (fractions allowed), text
// may also be a Go duration ("1m30s"). It fails on an absent key (wrapping ErrNotSet) or anything else.
func (c Config) Duration(key string) (time.Duration, error) {
	var d time.Duration
	return d, c.decode(key, &d, "seconds or a duration such as 1m30s")
}

// decode decodes the value at key into out for a typed getter, whose value is wanted.
func (c Config) decode(key string, out any, wanted string) error {
	stored, ok := c.key(key)
	if !ok {
		return fmt.Errorf("config %s: %w", key, ErrNotSet)
	}
	v := c.k.Get(stored)
	if v == nil || decodeValue(v, out) != nil {
		return fmt.Errorf("config %s: want %s, got %s", stored, wanted, describe(v))
	}
	return nil
}

// Unmarshal decodes the value at key ("" for the whole configuration) into out, a pointer to a struct,
// map or scalar. Struct fields match keys case-insensitively by their `yaml` tag or else their name;
// durations are read as Duration reads them, and text holding a number or a boolean counts as one.
// Out is left untouched when key is absent.
func (c Config) Unmarshal(key string, out any) error {
	var v any
	if key == "" {
		v = c.Get("")
	} else if stored, ok := c.key(key); ok {
		key, v = stored, c.k.Get(stored)
	}
	if v == nil {
		return nil
	}
	if err := decodeValue(v, out); err != nil {
		return fmt.Errorf("config %s: %w", cmp.Or(key, "(all keys)"), err)
	}
	return nil
}

// decodeValue decodes v into out with the hooks for a service's keys.
func decodeValue(v, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{DecodeHook: serviceHook, TagName: "yaml", Result: out})
	if err != nil {
		return err
	}
	return d.Decode(v)
}

// Path returns the value of `--config PATH` or `--config=PATH` (one dash works too) in args, typically
// os.Args[1:]; the last one wins, arguments after "--" are not looked at, and "" means the flag is
// absent. A flag without a path is an error.
func Path(args []string) (string, error) {
	errNoPath := errors.New("--config needs a file path")
	path := ""
	for i := 0; i < len(args); i++ {
		if args[i] == "--" {
			break
		}
		flag, value, hasValue := strings.Cut(args[i], "=")
		if flag != "--config" && flag != "-config" {
			continue
		}
		if !hasValue {
			if i+1 == len(args) || strings.HasPrefix(args[i+1], "-") {
				return "", errNoPath
			}
			i++
			value = args[i]
		}
		if value == "" {
			return "", errNoPath
		}
		path = value
	}
	return path, nil
}
